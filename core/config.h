#ifndef HM_CONFIG_H
#define HM_CONFIG_H
/*
 * hemsd configuration: embedded defaults, then an INI file (inih), then command-line
 * overrides. Every key is declared once in HM_CONFIG_KEYS below; that table drives the
 * parser, `hemsd --help-config`, --check-config and ops/hemsd.conf, so the documentation
 * cannot drift from the code.
 *
 * Keys marked reload=1 are re-read on SIGHUP and applied to running shards; the others need
 * a restart (a changed value is logged and ignored).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* X(section, key, type, field, default, reload, doc)   type: STR, U64, BOOL, LEVEL */
#define HM_CONFIG_KEYS(X)                                                                    \
    X(server, cwmp_listen, STR, cwmp_listen, "127.0.0.1:7547", 0,                            \
      "address:port of the CWMP / file-server listener (HeNBs connect here)")                \
    X(server, admin_listen, STR, admin_listen, "127.0.0.1:7557", 0,                          \
      "address:port of the northbound API, /metrics, /healthz")                              \
    X(server, cwmps_listen, STR, cwmps_listen, "", 0,                                        \
      "address:port of the CWMP listener over TLS (HTTPS, docs/tls.md); empty: off. Needs "    \
      "tls.cert and tls.key")                                                                \
    X(server, cwmp_proxy_protocol, BOOL, cwmp_proxy_protocol, "false", 0,                    \
      "expect a PROXY protocol v1/v2 header on every CWMP connection (behind HAProxy with "    \
      "send-proxy-v2); the address in it is the HeNB's")                                     \
    X(server, cwmps_proxy_protocol, BOOL, cwmps_proxy_protocol, "false", 0,                  \
      "expect a PROXY protocol v1/v2 header before the TLS ClientHello on every CWMPS "        \
      "connection (HAProxy TLS passthrough, mode tcp, send-proxy-v2)")                       \
    X(server, data_dir, STR, data_dir, "./data", 0,                                          \
      "folder holding the LMDB environment, spool and quarantine folders")                   \
    X(server, shards, U64, shards, "0", 0,                                                   \
      "reactor threads, one per core; 0 = one per online CPU")                               \
    X(server, pin_threads, BOOL, pin_threads, "true", 0,                                     \
      "pin shard i to CPU i (mod online CPUs)")                                              \
    X(server, max_connections, U64, max_connections, "0", 0,                                 \
      "connection slots over all shards; 0 = sized from RLIMIT_NOFILE")                      \
    X(server, max_connections_per_source, U64, max_per_source, "0", 0,                      \
      "CWMP connections one source address may hold (0: no limit); enforced per shard as "    \
      "limit/shards; not applied where the PROXY protocol is on (the source is the balancer)") \
    X(server, recv_buffers, U64, recv_buffers, "1024", 0,                                    \
      "provided receive buffers per shard (power of two); held only while a request is "     \
      "being read")                                                                          \
    X(server, recv_buffer_size, U64, recv_buffer_size, "16384", 0,                           \
      "bytes per provided receive buffer")                                                   \
    X(log, level, LEVEL, log_level, "info", 1, "debug | info | warn | error | crit")          \
    X(http, max_request_line, U64, max_request_line, "8192", 1,                              \
      "longest request line in bytes (longer: 414)")                                         \
    X(http, max_head_bytes, U64, max_head_bytes, "16384", 1,                                 \
      "largest request head in bytes (larger: 431)")                                         \
    X(http, max_headers, U64, max_headers, "64", 1,                                          \
      "most header fields in a request, at most 64 (more: 431)")                             \
    X(http, max_body_bytes, U64, max_body_bytes, "4194304", 1,                               \
      "largest request body buffered in memory (larger: 413)")                               \
    X(http, header_timeout_ms, U64, header_timeout_ms, "10000", 1,                           \
      "time from a request's first byte to its complete head (then: 408, close)")            \
    X(http, body_timeout_ms, U64, body_timeout_ms, "30000", 1,                               \
      "time from a complete head to the complete body (then: 408, close)")                   \
    X(http, idle_timeout_ms, U64, idle_timeout_ms, "60000", 1,                               \
      "keep-alive connection idle time before it is closed")                                 \
    X(http, shutdown_timeout_ms, U64, shutdown_timeout_ms, "10000", 1,                       \
      "on SIGTERM, time allowed for in-flight requests before connections are closed")        \
    X(cwmp, path, STR, cwmp_path, "/cwmp", 0,                                                \
      "URL path of the CWMP endpoint (the ManagementServer.URL path HeNBs use)")             \
    X(cwmp, auth, STR, cwmp_auth, "none", 0,                                                 \
      "CPE authentication: none | digest (HTTP Digest, qop=auth, fresh nonce per connection)") \
    X(cwmp, realm, STR, cwmp_realm, "hems", 0, "Digest realm")                               \
    X(cwmp, username, STR, cwmp_username, "", 0,                                             \
      "policy credentials every CPE must present with auth=digest (ManagementServer.Username)") \
    X(cwmp, password, STR, cwmp_password, "", 0,                                             \
      "policy password (ManagementServer.Password); kept only as its Digest HA1 in memory")  \
    X(cwmp, nonce_lifetime_s, U64, nonce_lifetime_s, "300", 0,                               \
      "Digest nonce lifetime; an older nonce gets a stale=true challenge")                   \
    X(cwmp, max_parameters, U64, cwmp_max_params, "4096", 1,                                 \
      "most list entries (parameters, events) accepted in one CWMP message")                 \
    X(cwmp, max_sessions, U64, cwmp_max_sessions, "0", 0,                                    \
      "concurrent CWMP sessions over all shards; 0 = the connection slots")                  \
    X(tls, cert, STR, tls_cert, "", 1,                                                       \
      "PEM certificate chain file(s) of the CWMPS listener, comma-separated, one per server "  \
      "name (picked by SNI; the first is the default). ECDSA P-256 or RSA")                  \
    X(tls, key, STR, tls_key, "", 1, "PEM private key file(s), in the order of tls.cert")      \
    X(tls, ca, STR, tls_ca, "", 1,                                                           \
      "PEM file of the CA certificates HeNB client certificates must chain to (vendor or "     \
      "operator CAs)")                                                                       \
    X(tls, crl, STR, tls_crl, "", 1,                                                         \
      "PEM file of CRLs (one per issuing CA) checked for client certificates; empty: none")   \
    X(tls, client_auth, STR, tls_client_auth, "required", 1,                                 \
      "client certificates: required (mTLS, TS 33.320) | optional (verified when sent) | "     \
      "none (HTTP authentication only)")                                                     \
    X(tls, min_version, STR, tls_min_version, "1.2", 1, "lowest TLS version: 1.2 | 1.3")       \
    X(tls, ticket_key_rotate_s, U64, tls_ticket_key_rotate_s, "3600", 1,                     \
      "session-ticket key lifetime; the previous key still resumes for one more period")     \
    X(tls, ticket_key_file, STR, tls_ticket_key_file, "", 1,                                 \
      "session-ticket keys shared by several nodes (docs/tls.md): one hex key per line, the "  \
      "first encrypts, the next also decrypts; reread on SIGHUP. Empty: per-process keys")    \
    X(tls, session_cache_size, U64, tls_session_cache_size, "20480", 1,                      \
      "TLS 1.2 session-ID cache entries (0: off; tickets work without it)")                  \
    X(datamodel, files, STR, dm_files, "", 0,                                                \
      "comma-separated BBF data-model XML files (e.g. ops/datamodels/*.xml); every task is "  \
      "checked against them. Empty: syntax checks only")                                     \
    X(cwmp, cr_username, STR, cr_username, "", 0,                                           \
      "Connection Request Digest username (policy; a device record's own overrides it)")    \
    X(cwmp, cr_password, STR, cr_password, "", 0,                                           \
      "Connection Request Digest password (policy; a device record's own overrides it)")    \
    X(cwmp, cr_max_per_s, U64, cr_max_per_s, "50", 0,                                      \
      "Connection Requests started per second at most (all devices)")                       \
    X(cwmp, cr_timeout_ms, U64, cr_timeout_ms, "5000", 0,                                   \
      "Connection Request attempt timeout (connect, send, status line)")                    \
    X(api, reader_token_sha256, STR, api_reader_sha256, "", 0,                               \
      "SHA-256 (hex) of the bearer token of the read-only role; empty: no such token")       \
    X(api, operator_token_sha256, STR, api_operator_sha256, "", 0,                           \
      "SHA-256 (hex) of the bearer token of the operator role (reads and writes). With no "   \
      "token configured the API is open and the admin listener must be on loopback")          \
    X(hems, role, STR, hems_role, "serving", 0,                                             \
      "TS 32.593 role of this node: serving | initial | both (docs/procedures.md)")           \
    X(hems, node_id, STR, hems_node_id, "", 0,                                               \
      "this node's id in the policy's serving_nodes (recorded as the devices' serving_node)") \
    X(hems, policy_file, STR, hems_policy_file, "", 0,                                       \
      "JSON policy: whitelist, serving_nodes, segws, static, s1, ipsec_indicator; re-read on "\
      "SIGHUP; empty: none (initial role refuses every device)")                             \
    X(store, map_size_mb, U64, store_map_mb, "1024", 0,                                      \
      "initial LMDB map size in MiB: address space, not disk; grows on demand")              \
    X(store, map_max_gb, U64, store_map_max_gb, "64", 0, "LMDB map size limit in GiB")         \
    X(store, no_sync, BOOL, store_no_sync, "false", 0,                                       \
      "skip fsync on commit: benchmarks only, forfeits durability")                          \
    /* admission control (core/admission.h, docs/admission.md) */                          \
    X(admission, enabled, BOOL, adm_enabled, "true", 0,                                      \
      "shed new CWMP sessions (503 + Retry-After) when this node is overloaded")             \
    X(admission, max_inflight_per_shard, U64, adm_max_inflight, "0", 0,                      \
      "hard cap on CWMP sessions in flight per shard (a memory bound); 0 = auto (4096)")     \
    X(admission, min_rate_per_shard, U64, adm_min_rate, "0", 0,                              \
      "floor of the adaptive new-session rate per shard (sessions/s); 0 = auto (20)")        \
    X(admission, max_rate_per_shard, U64, adm_max_rate, "0", 0,                              \
      "static cap on new CWMP sessions/s per shard (e.g. 90% of the measured peak, "          \
      "docs/capacity-planning.md); 0 = none: the adaptive rate alone")                       \
    X(admission, target_lag_ms, U64, adm_target_lag_ms, "0", 0,                              \
      "shard loop-lag EWMA above which the shard counts as congested; 0 = auto (250)")        \
    X(admission, target_commit_ms, U64, adm_target_commit_ms, "0", 0,                        \
      "commit-wait EWMA above which the shard counts as congested; 0 = auto (500)")          \
    X(admission, target_session_ms, U64, adm_target_session_ms, "0", 0,                      \
      "session-time EWMA above which the shard counts as congested; 0 = not a signal (it "   \
      "includes the CPEs' own round trips)")                                                 \
    X(admission, max_store_queue, U64, adm_max_store_queue, "0", 0,                          \
      "store batches waiting for the writer above which new sessions are shed; 0 = auto (2048)") \
    X(admission, retry_after_s, U64, adm_retry_after_s, "10", 0,                             \
      "mean Retry-After sent with a shed (uniform in [s/2, 3s/2])")                          \
    X(admission, syn_shed, BOOL, adm_syn_shed, "true", 0,                                    \
      "under overload, drop a share of new connections' SYNs in the kernel (a filter on "   \
      "the CWMP listeners); the CPE's TCP sends them again after 1 s, 3 s, ...")            \
    X(admission, accept_pacing, BOOL, adm_accept_pacing, "true", 0,                          \
      "under overload, accept new connections only as the rate allows and leave the rest "  \
      "in a short kernel accept queue, whose overflow drops SYNs (no refusal to send)")     \
    X(pm, path, STR, pm_path, "/pm/", 0,                                                     \
      "URL path prefix of the PM file upload endpoint on the CWMP listener (PUT/POST)")      \
    X(pm, spool_max_files, U64, pm_spool_max_files, "10000", 0,                              \
      "PM files waiting in the spool before uploads get 503 + Retry-After")                  \
    X(pm, spool_max_bytes, U64, pm_spool_max_bytes, "1073741824", 0,                         \
      "PM bytes waiting in the spool before uploads get 503 + Retry-After")                  \
    X(pm, pipeline_threads, U64, pm_pipeline_threads, "1", 0,                                \
      "PM parsing/ingestion threads")                                                        \
    X(pm, max_file_bytes, U64, pm_max_file_bytes, "4194304", 0,                              \
      "largest PM upload accepted (also bounded by http.max_body_bytes; larger: 413)")       \
    X(pm, username, STR, pm_username, "", 0,                                                 \
      "node-wide PM upload user (Basic or Digest); empty and no device_credentials = open")   \
    X(pm, password, STR, pm_password, "", 0, "PM upload password")                           \
    X(pm, device_credentials, BOOL, pm_device_credentials, "false", 0,                       \
      "verify uploads against the per-device credentials provisioned at registration")       \
    X(pm, node_credentials, BOOL, pm_node_credentials, "true", 0,                            \
      "also accept the node-wide pm.username/password (devices provisioned by other means)") \
    X(files, path, STR, files_path, "/files/", 0,                                            \
      "URL path prefix of the file server on the CWMP listener (GET/HEAD, docs/files.md)")   \
    X(files, base_url, STR, files_base_url, "", 0,                                           \
      "URL prefix written in Download RPCs for uploaded files; empty: "                      \
      "http://<server.cwmp_listen><files.path>")                                             \
    X(files, max_bytes, U64, files_max_bytes, "67108864", 0,                                 \
      "largest uploaded file (413 above; uploads are also bounded by http.max_body_bytes)")  \
    X(files, max_inflight_bytes, U64, files_max_inflight_bytes, "268435456", 0,              \
      "file bytes buffered for downloads at once (all shards); a download beyond it gets "    \
      "503 + Retry-After (one download is always let through); 0 = no cap")    \
    X(alarms, stream_heartbeat_ms, U64, alarm_stream_heartbeat_ms, "15000", 0,               \
      "SSE comment sent on an alarm stream after this long without events")                  \
    X(alarms, stream_max_buffer_bytes, U64, alarm_stream_max_buffer, "1048576", 0,           \
      "bytes an alarm stream consumer may fall behind (queued, plus as much socket buffer) "  \
      "before it is disconnected; it resumes from its Last-Event-ID")                        \
    X(alarms, stream_poll_ms, U64, alarm_stream_poll_ms, "100", 0,                           \
      "how often a shard with alarm streams looks for new commits (the stream latency); "    \
      "rounded up to the 100 ms shard tick; 0 = 100")                                        \
    X(alarms, stream_late_window_ms, U64, alarm_stream_late_ms, "60000", 0,                  \
      "live streams also deliver alarms committed late whose event time is at most this far " \
      "behind the stream's cursor (HeNB clocks, queued events)")                             \
    X(admin, ui_dir, STR, admin_ui_dir, "", 0,                                               \
      "folder of the dashboard served at / and /ui/ on the admin listener; empty: "          \
      "<bindir>/../share/hems/ui, else <bindir>/../ops/ui (checkout); 'off': not served")

struct hm_config {
#define HM_CFG_FIELD_STR(f) char *f;
#define HM_CFG_FIELD_U64(f) uint64_t f;
#define HM_CFG_FIELD_BOOL(f) bool f;
#define HM_CFG_FIELD_LEVEL(f) int f;
#define HM_CFG_FIELD(sec, key, type, field, def, reload, doc) HM_CFG_FIELD_##type(field)
    HM_CONFIG_KEYS(HM_CFG_FIELD)
#undef HM_CFG_FIELD
    char *config_file; /* NULL when running on embedded defaults */
};

/* Fills <c> with the embedded defaults. Free with hm_config_free(). */
void hm_config_defaults(struct hm_config *c);

/*
 * Applies "section.key=value" (or "key=value" when the key name is unique) to <c>.
 * Returns 0, or HM_EBADCONF with a message in <err> (size <errlen>).
 */
int hm_config_set(struct hm_config *c, const char *assignment, char *err, size_t errlen);

/* Same, from separate section, key and value. */
int hm_config_set_kv(struct hm_config *c, const char *section, const char *key,
                     const char *value, char *err, size_t errlen);

/*
 * Reads the INI file <path> into <c> (on top of what is there). Unknown sections or keys,
 * bad values and unreadable files fail with HM_EBADCONF or -errno and a message naming the
 * file and line in <err>.
 */
int hm_config_load(struct hm_config *c, const char *path, char *err, size_t errlen);

/* Cross-field checks (addresses parse, limits sane). 0 or HM_EBADCONF with <err>. */
int hm_config_validate(const struct hm_config *c, char *err, size_t errlen);

/* Copies <src> into <dst> (deep). <dst> must be freed or never initialised. */
void hm_config_copy(struct hm_config *dst, const struct hm_config *src);

void hm_config_free(struct hm_config *c);

/* Writes every key with its doc and current value, in INI form, to <fp> (a FILE *). */
void hm_config_dump(const struct hm_config *c, void *fp);

/* Logs keys that differ between <old> and <new> and need a restart. */
void hm_config_log_restart_only_changes(const struct hm_config *old, const struct hm_config *new_);

/*
 * Parses "a.b.c.d:port" or "[v6]:port" into a sockaddr (struct sockaddr_storage *).
 * Returns the address length, or HM_EBADCONF.
 */
int hm_parse_hostport(const char *s, void *ss);

#endif
