/*
 * A stand-in N-API host (no Node) that loads a vitkit .node with the C library's own dynamic
 * loader (musl's ld-musl when built with musl-gcc), runs its module init, and calls a few of its
 * functions through their N-API callbacks:
 *   gemmIsa()      -> the kernel set the ISA dispatcher picked (CPUID on x86)
 *   getThreads()   -> the thread pool's size
 *   gemm()         -> no arguments: the addon throws a C++ Napi::TypeError, which its callback
 *                     wrapper catches and passes to napi_throw (the C++ runtime's exception path)
 * Prints one line per result; exits non-zero on any failure. The test (napi_host.test.ts) appends
 * a do-nothing stub for every other napi_* function the addon imports (they must all resolve).
 *   napi_host <addon.node>
 */
#include <dlfcn.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void* napi_value;
typedef void* (*napi_callback)(void* env, void* info);

#define MAX_FNS 64
static struct { char name[64]; napi_callback cb; void* data; } fns[MAX_FNS];
static int nfns = 0;
static void* current_data = NULL;
static char last_string[512];
static char error_msg[512];  /* the message of the last error created */
static double last_double = -1;
static int thrown = 0;
static char dummy[MAX_FNS + 16];  /* distinct non-null napi_value handles */

int napi_create_function(void* env, const char* name, size_t len, napi_callback cb, void* data, napi_value* result) {
  (void)env; (void)len;
  if (nfns < MAX_FNS) {
    snprintf(fns[nfns].name, sizeof fns[nfns].name, "%s", name ? name : "");
    fns[nfns].cb = cb;
    fns[nfns].data = data;
    *result = &dummy[nfns];
    nfns++;
  }
  return 0;
}
int napi_get_cb_info(void* env, void* info, size_t* argc, napi_value* argv, napi_value* this_arg, void** data) {
  (void)env; (void)info; (void)argv;
  if (argc) *argc = 0;
  if (this_arg) *this_arg = &dummy[MAX_FNS];
  if (data) *data = current_data;
  return 0;
}
int napi_create_string_utf8(void* env, const char* s, size_t len, napi_value* result) {
  (void)env;
  size_t n = len == (size_t)-1 ? strlen(s) : len;
  if (n >= sizeof last_string) n = sizeof last_string - 1;
  memcpy(last_string, s, n);
  last_string[n] = 0;
  *result = &dummy[MAX_FNS + 1];
  return 0;
}
int napi_create_double(void* env, double v, napi_value* result) {
  (void)env;
  last_double = v;
  *result = &dummy[MAX_FNS + 2];
  return 0;
}
int napi_throw(void* env, napi_value error) { (void)env; (void)error; thrown++; return 0; }
int napi_is_exception_pending(void* env, bool* result) { (void)env; *result = false; return 0; }
int napi_get_undefined(void* env, napi_value* result) { (void)env; *result = &dummy[MAX_FNS + 3]; return 0; }
int napi_create_object(void* env, napi_value* result) { (void)env; *result = &dummy[MAX_FNS + 4]; return 0; }
int napi_create_type_error(void* env, napi_value code, napi_value msg, napi_value* result) {
  memcpy(error_msg, last_string, sizeof error_msg);
  (void)env; (void)code; (void)msg; *result = &dummy[MAX_FNS + 5]; return 0;
}
int napi_create_error(void* env, napi_value code, napi_value msg, napi_value* result) {
  memcpy(error_msg, last_string, sizeof error_msg);
  (void)env; (void)code; (void)msg; *result = &dummy[MAX_FNS + 6]; return 0;
}
int napi_create_range_error(void* env, napi_value code, napi_value msg, napi_value* result) {
  memcpy(error_msg, last_string, sizeof error_msg);
  (void)env; (void)code; (void)msg; *result = &dummy[MAX_FNS + 7]; return 0;
}
int napi_create_reference(void* env, napi_value v, unsigned n, void** result) {
  (void)env; (void)n; *result = v; return 0;
}
int napi_get_reference_value(void* env, void* ref, napi_value* result) { (void)env; *result = ref; return 0; }
int napi_open_handle_scope(void* env, void** result) { (void)env; *result = &dummy[MAX_FNS + 8]; return 0; }
int napi_open_escapable_handle_scope(void* env, void** result) { (void)env; *result = &dummy[MAX_FNS + 9]; return 0; }
int napi_escape_handle(void* env, void* scope, napi_value v, napi_value* result) { (void)env; (void)scope; *result = v; return 0; }
void napi_fatal_error(const char* loc, size_t ll, const char* msg, size_t ml) {
  (void)ll; (void)ml;
  fprintf(stderr, "napi_fatal_error: %s: %s\n", loc ? loc : "", msg ? msg : "");
  exit(3);
}

static napi_callback find(const char* name, void** data) {
  for (int i = 0; i < nfns; i++)
    if (!strcmp(fns[i].name, name)) { *data = fns[i].data; return fns[i].cb; }
  return NULL;
}

int main(int argc, char** argv) {
  if (argc != 2) { fprintf(stderr, "usage: napi_host <addon.node>\n"); return 2; }
  void* h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!h) { fprintf(stderr, "dlopen: %s\n", dlerror()); return 1; }
  typedef napi_value (*reg_fn)(void* env, napi_value exports);
  reg_fn reg = (reg_fn)dlsym(h, "napi_register_module_v1");
  if (!reg) { fprintf(stderr, "no napi_register_module_v1\n"); return 1; }
  reg(&dummy[MAX_FNS + 10], &dummy[MAX_FNS + 11]);
  printf("functions %d\n", nfns);
  void* data;
  napi_callback cb = find("gemmIsa", &data);
  if (!cb) { fprintf(stderr, "no gemmIsa\n"); return 1; }
  current_data = data;
  cb(&dummy[MAX_FNS + 10], &dummy[MAX_FNS + 12]);
  printf("gemmIsa %s\n", last_string);
  cb = find("getThreads", &data);
  if (!cb) { fprintf(stderr, "no getThreads\n"); return 1; }
  current_data = data;
  cb(&dummy[MAX_FNS + 10], &dummy[MAX_FNS + 12]);
  printf("getThreads %g\n", last_double);
  cb = find("gemm", &data);
  if (!cb) { fprintf(stderr, "no gemm\n"); return 1; }
  current_data = data;
  cb(&dummy[MAX_FNS + 10], &dummy[MAX_FNS + 12]);
  printf("gemm() thrown %d: %s\n", thrown, error_msg);
  return thrown == 1 ? 0 : 1;
}
