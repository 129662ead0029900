# Finds the fixed dependencies. Each failure names the Debian package that provides it.
find_package(Threads REQUIRED)
find_package(PkgConfig REQUIRED)

function(hm_find_lib target header lib pkg)
  find_path(${target}_INC ${header} PATHS ${ARGN})
  find_library(${target}_LIB NAMES ${lib} PATHS ${ARGN})
  if(NOT ${target}_INC OR NOT ${target}_LIB)
    message(FATAL_ERROR "hems: ${header} / lib${lib} not found: install the Debian package "
                        "'${pkg}' (apt-get install ${pkg})")
  endif()
  add_library(hm::${target} UNKNOWN IMPORTED GLOBAL)
  set_target_properties(hm::${target} PROPERTIES IMPORTED_LOCATION ${${target}_LIB}
                        INTERFACE_INCLUDE_DIRECTORIES ${${target}_INC})
endfunction()

hm_find_lib(uring liburing.h uring liburing-dev)
hm_find_lib(lmdb lmdb.h lmdb liblmdb-dev)
hm_find_lib(jemalloc jemalloc/jemalloc.h jemalloc libjemalloc-dev)
hm_find_lib(inih ini.h inih libinih-dev)
hm_find_lib(ck ck_ring.h ck libck-dev)
hm_find_lib(jansson jansson.h jansson libjansson-dev)
hm_find_lib(zlib zlib.h z zlib1g-dev)

find_package(LibXml2 QUIET)
if(NOT LibXml2_FOUND)
  message(FATAL_ERROR "hems: libxml2 not found: install the Debian package 'libxml2-dev'")
endif()
add_library(hm::xml2 INTERFACE IMPORTED GLOBAL)
target_link_libraries(hm::xml2 INTERFACE LibXml2::LibXml2)

# Debian's BoringSSL: headers in /usr/include/android, libraries with soname .so.0 in a
# private folder and no pkg-config file. Programs get an rpath to that folder.
set(HM_BORINGSSL_LIBDIR /usr/lib/${CMAKE_LIBRARY_ARCHITECTURE}/android CACHE PATH
    "folder holding BoringSSL's libssl.so.0 and libcrypto.so.0")
find_path(HM_BORINGSSL_INC openssl/base.h PATHS /usr/include/android NO_DEFAULT_PATH)
find_library(HM_BORINGSSL_SSL NAMES ssl libssl.so.0 PATHS ${HM_BORINGSSL_LIBDIR} NO_DEFAULT_PATH)
find_library(HM_BORINGSSL_CRYPTO NAMES crypto libcrypto.so.0 PATHS ${HM_BORINGSSL_LIBDIR}
             NO_DEFAULT_PATH)
if(NOT HM_BORINGSSL_INC OR NOT HM_BORINGSSL_SSL OR NOT HM_BORINGSSL_CRYPTO)
  message(FATAL_ERROR "hems: BoringSSL not found (want /usr/include/android/openssl/base.h and "
          "${HM_BORINGSSL_LIBDIR}/lib{ssl,crypto}.so.0): install the Debian package "
          "'android-libboringssl-dev'")
endif()
foreach(t ssl crypto)
  string(TOUPPER ${t} T)
  add_library(hm::${t} UNKNOWN IMPORTED GLOBAL)
  set_target_properties(hm::${t} PROPERTIES IMPORTED_LOCATION ${HM_BORINGSSL_${T}}
                        INTERFACE_INCLUDE_DIRECTORIES ${HM_BORINGSSL_INC})
endforeach()

if(HM_TESTS)
  pkg_check_modules(CHECK QUIET check)
  if(NOT CHECK_FOUND)
    message(FATAL_ERROR "hems: the Check unit-test framework not found: install the Debian "
                        "package 'check' (or configure with -DHM_TESTS=OFF)")
  endif()
endif()
