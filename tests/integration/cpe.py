"""A scripted TR-069 CPE for integration tests: builds CPE messages, speaks HTTP/1.1 over one
keep-alive connection with cookies, and parses the ACS's replies with ElementTree."""
import hashlib
import os
import re
import xml.etree.ElementTree as ET

from hemsd import connect, read_response

SOAP = "http://schemas.xmlsoap.org/soap/envelope/"


def inform_xml(oui="00005A", pc="HeNB", sn="SN0001", events=("2 PERIODIC",), params=None,
               ns="urn:dslforum-org:cwmp-1-0", msg_id="inf-1", prefix="soap-env", command_keys=None,
               extra_header=""):
    params = params if params is not None else [
        ("Device.DeviceInfo.SoftwareVersion", "4.2.1", "xsd:string"),
        ("Device.ManagementServer.ConnectionRequestURL", "http://127.0.0.1:30005/cr", "xsd:string"),
        ("Device.ManagementServer.ParameterKey", "", "xsd:string"),
    ]
    ev = "".join("<EventStruct><EventCode>%s</EventCode><CommandKey>%s</CommandKey></EventStruct>"
                 % (e, (command_keys or {}).get(e, "")) for e in events)
    pl = "".join('<ParameterValueStruct><Name>%s</Name><Value xsi:type="%s">%s</Value></ParameterValueStruct>'
                 % (n, t, v) for n, v, t in params)
    return ('<?xml version="1.0" encoding="UTF-8"?>'
            '<{p}:Envelope xmlns:{p}="{soap}" xmlns:soap-enc="http://schemas.xmlsoap.org/soap/encoding/" '
            'xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
            'xmlns:cwmp="{ns}"><{p}:Header><cwmp:ID {p}:mustUnderstand="1">{id}</cwmp:ID>{xh}</{p}:Header>'
            '<{p}:Body><cwmp:Inform><DeviceId><Manufacturer>Acme</Manufacturer><OUI>{oui}</OUI>'
            '<ProductClass>{pc}</ProductClass><SerialNumber>{sn}</SerialNumber></DeviceId>'
            '<Event soap-enc:arrayType="cwmp:EventStruct[{ne}]">{ev}</Event><MaxEnvelopes>1</MaxEnvelopes>'
            '<CurrentTime>2026-11-27T00:00:00Z</CurrentTime><RetryCount>0</RetryCount>'
            '<ParameterList soap-enc:arrayType="cwmp:ParameterValueStruct[{np}]">{pl}</ParameterList>'
            '</cwmp:Inform></{p}:Body></{p}:Envelope>').format(
        p=prefix, soap=SOAP, ns=ns, id=msg_id, xh=extra_header, oui=oui, pc=pc, sn=sn, ne=len(events), ev=ev,
        np=len(params), pl=pl).encode()


def envelope(body, msg_id, ns="urn:dslforum-org:cwmp-1-0"):
    return ('<?xml version="1.0"?><soapenv:Envelope xmlns:soapenv="%s" xmlns:cwmp="%s" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema">'
            '<soapenv:Header><cwmp:ID soapenv:mustUnderstand="1">%s</cwmp:ID></soapenv:Header>'
            '<soapenv:Body>%s</soapenv:Body></soapenv:Envelope>' % (SOAP, ns, msg_id, body)).encode()


def gpv_response(msg_id, params):
    pl = "".join('<ParameterValueStruct><Name>%s</Name><Value xsi:type="%s">%s</Value></ParameterValueStruct>'
                 % (n, t, v) for n, v, t in params)
    return envelope("<cwmp:GetParameterValuesResponse><ParameterList>%s</ParameterList>"
                    "</cwmp:GetParameterValuesResponse>" % pl, msg_id)


def spv_fault(msg_id, name, code=9007):
    return envelope('<soapenv:Fault><faultcode>Client</faultcode><faultstring>CWMP fault</faultstring>'
                    '<detail><cwmp:Fault><FaultCode>9003</FaultCode><FaultString>Invalid arguments</FaultString>'
                    '<SetParameterValuesFault><ParameterName>%s</ParameterName><FaultCode>%d</FaultCode>'
                    '<FaultString>Invalid parameter value</FaultString></SetParameterValuesFault>'
                    '</cwmp:Fault></detail></soapenv:Fault>' % (name, code), msg_id)


def status_response(method, msg_id, status=0, extra=""):
    return envelope("<cwmp:%s><Status>%d</Status>%s</cwmp:%s>" % (method, status, extra, method), msg_id)


def transfer_complete(msg_id, command_key, fault_code=0):
    return envelope("<cwmp:TransferComplete><CommandKey>%s</CommandKey><FaultStruct><FaultCode>%d</FaultCode>"
                    "<FaultString></FaultString></FaultStruct><StartTime>2026-11-27T00:00:00Z</StartTime>"
                    "<CompleteTime>2026-11-27T00:00:05Z</CompleteTime></cwmp:TransferComplete>"
                    % (command_key, fault_code), msg_id)


class Reply:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body
        self.root = ET.fromstring(body) if body.strip() and status == 200 and b"<" in body[:100] else None

    def rpc(self):
        """(local name of the Body's child, cwmp:ID, element)."""
        body = self.root.find("{%s}Body" % SOAP)
        child = list(body)[0]
        hdr = self.root.find("{%s}Header" % SOAP)
        mid = None
        if hdr is not None:
            for e in hdr:
                if e.tag.endswith("}ID"):
                    mid = e.text
        return child.tag.split("}")[1], mid, child

    def fault_code(self):
        name, _, el = self.rpc()
        assert name == "Fault", name
        for e in el.iter():
            if e.tag.endswith("FaultCode"):
                return int(e.text)


class Cpe:
    """One HTTP connection of a CPE to the ACS."""

    def __init__(self, port, path="/cwmp", auth=None):
        self.sock = connect(port)
        self.path = path
        self.cookie = None
        self.auth = auth  # (user, password) for Digest
        self.challenge = None
        self.nc = 0

    def _digest_header(self, method="POST"):
        user, pw = self.auth
        ch = self.challenge
        self.nc += 1
        cnonce = os.urandom(8).hex()
        ha1 = hashlib.md5(("%s:%s:%s" % (user, ch["realm"], pw)).encode()).hexdigest()
        ha2 = hashlib.md5(("%s:%s" % (method, self.path)).encode()).hexdigest()
        resp = hashlib.md5(("%s:%s:%08x:%s:auth:%s" % (ha1, ch["nonce"], self.nc, cnonce, ha2)).encode()).hexdigest()
        return ('Digest username="%s", realm="%s", nonce="%s", uri="%s", qop=auth, nc=%08x, '
                'cnonce="%s", response="%s", algorithm=MD5' % (user, ch["realm"], ch["nonce"], self.path,
                                                                 self.nc, cnonce, resp))

    def post(self, body=b"", extra_headers=None):
        h = ["POST %s HTTP/1.1" % self.path, "Host: 127.0.0.1", "Content-Length: %d" % len(body)]
        if body:
            h.append('Content-Type: text/xml; charset="utf-8"')
            h.append("SOAPAction: ")
        if self.cookie:
            h.append("Cookie: " + self.cookie)
        if self.auth and self.challenge:
            h.append("Authorization: " + self._digest_header())
        h += extra_headers or []
        self.sock.sendall(("\r\n".join(h) + "\r\n\r\n").encode() + body)
        st, hd, b = read_response(self.sock)
        if "set-cookie" in hd:
            self.cookie = hd["set-cookie"].split(";")[0]
        if st == 401 and self.auth:
            self.challenge = dict(re.findall(r'(\w+)="?([^",]*)"?', hd["www-authenticate"]))
            self.nc = 0
        return Reply(st, hd, b)

    def close(self):
        self.sock.close()


def spv_params(el):
    """{name: (value, xsi:type)} of a SetParameterValues request element."""
    out = {}
    for p in el.iter():
        if p.tag.endswith("ParameterValueStruct"):
            name = value = typ = None
            for c in p:
                if c.tag.endswith("Name"):
                    name = c.text
                elif c.tag.endswith("Value"):
                    value = c.text or ""
                    typ = c.get("{http://www.w3.org/2001/XMLSchema-instance}type")
            out[name] = (value, typ)
    return out


def default_answer(name, mid, el, instance=3):
    """The body of a CPE that does what it is asked: GetParameterValues answered with "0" for
    every name, AddObject with <instance>, any other RPC with its success response."""
    if name == "GetParameterValues":
        names = [e.text for e in el.iter() if e.tag.split("}")[-1] == "string"]
        return gpv_response(mid, [(n, "0", "xsd:string") for n in names])
    if name == "AddObject":
        return envelope("<cwmp:AddObjectResponse><InstanceNumber>%d</InstanceNumber><Status>0"
                        "</Status></cwmp:AddObjectResponse>" % instance, mid)
    return status_response(name + "Response", mid)


def run_session(cpe, sn, pc="HeNB", events=("0 BOOTSTRAP", "1 BOOT"), params=None, answer=None,
                strict=True):
    """One CWMP session on <cpe> (a Cpe, or a port to open one on): the Inform, then every RPC
    the ACS sends answered by <answer>(name, cwmp id, element) (None or missing: default_answer)
    until the 204; closes the connection. Returns (Inform reply, [(rpc name, element)]).
    <strict>: assert the Inform was answered and the session ended with 204; otherwise a
    refused Inform returns (reply, [])."""
    if isinstance(cpe, int):
        cpe = Cpe(cpe)
    first = cpe.post(inform_xml(sn=sn, pc=pc, events=events, params=params))
    rpcs = []
    if first.status == 200 and first.rpc()[0] == "InformResponse":
        r = cpe.post()
        while r.status == 200:
            name, mid, el = r.rpc()
            rpcs.append((name, el))
            body = answer(name, mid, el) if answer else None
            r = cpe.post(body or default_answer(name, mid, el))
        assert r.status == 204, (r.status, r.body)
    elif strict:
        raise AssertionError((first.status, first.body))
    cpe.close()
    return first, rpcs
