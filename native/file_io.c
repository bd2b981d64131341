// shorthorn_file_io: the two file operations the replica's data path needs that Node does not
// offer, as a small N-API addon (built by node-gyp from binding.gyp at `npm ci`).
//
// - preadNowait: preadv2(RWF_NOWAIT) on the calling (event-loop) thread. A read the page cache
//   can answer costs a few µs here instead of a hop to libuv's thread pool (futex wake, worker
//   wake, eventfd: ~15 µs of CPU per request measured on our VMs); a read that would touch the
//   disk fails at once with EAGAIN and the caller sends it to the pool, so the loop never waits
//   for a disk.
// - submit: a batch of preads or pwrites run one after another on ONE pool thread, with one
//   completion callback. Buffered pwritev2(RWF_NOWAIT) is refused (EOPNOTSUPP) by ext4 on our
//   kernels, so writes cannot stay on the loop; a batch of a turn's writes pays the thread hop
//   once instead of once per write.
//
// - mallocTrim: glibc's malloc_trim(0), which gives the free pages of every malloc arena back to
//   the kernel (not only the top of the heap, as the trim threshold does). Data processes call it
//   when they go idle, so a burst's buffers do not stay resident (docs/engine.md "Memory").
//
// Errors are returned as -errno; the JS side retries such an operation through node:fs so that
// callers see Node's usual error objects (code, syscall).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <node_api.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

// At most this many operations in one batch (the JS side caps batches lower).
#define BATCH_MAX 1024

#define CHECK(env, call)                                                        \
  do {                                                                          \
    if ((call) != napi_ok) {                                                    \
      napi_throw_error((env), "EADDON", "shorthorn_file_io: " #call " failed"); \
      return NULL;                                                              \
    }                                                                           \
  } while (0)

static napi_value make_number(napi_env env, double value) {
  napi_value out;
  if (napi_create_double(env, value, &out) != napi_ok) return NULL;
  return out;
}

static int get_bytes(napi_env env, napi_value value, uint8_t** data, size_t* length) {
  bool is_typed;
  if (napi_is_typedarray(env, value, &is_typed) != napi_ok || !is_typed) return -1;
  napi_typedarray_type type;
  void* base;
  napi_value buffer;
  size_t offset;
  if (napi_get_typedarray_info(env, value, &type, length, &base, &buffer, &offset) != napi_ok) return -1;
  if (type != napi_uint8_array) return -1;
  *data = (uint8_t*)base;
  return 0;
}

// Read all of [data, data+length) at position, or until end of file. Returns bytes read or
// -errno (-EAGAIN with RWF_NOWAIT when nothing could be read without the disk).
static int64_t read_fully(int fd, uint8_t* data, size_t length, int64_t position, int flags) {
  size_t done = 0;
  while (done < length) {
    struct iovec iov = {data + done, length - done};
    ssize_t n = preadv2(fd, &iov, 1, (off_t)(position + (int64_t)done), flags);
    if (n < 0) {
      if (errno == EINTR) continue;
      // Part was read from the cache: report that much; the caller reads the rest elsewhere.
      if (done > 0 && errno == EAGAIN) return (int64_t)done;
      return -(int64_t)errno;
    }
    if (n == 0) break;
    done += (size_t)n;
  }
  return (int64_t)done;
}

// Writes are cut at 128 KiB boundaries of the file. The page cache sizes a folio by the write
// that creates it, so one 1 MiB pwrite leaves 1 MiB folios behind, and ext4 (Linux 6.16 and later,
// which gave it large folios) walks every 4 KiB buffer of a folio on each later write into it:
// a 4 KiB random write into data first written in 1 MiB pieces cost 14-27 us of CPU against
// 6-7 us after 128 KiB pieces (measured on this VM, kernel 6.18). 128 KiB is also the folio size
// readahead builds. Sequential writes pay little for the extra calls: 164 against 323-456 us of
// CPU per MiB on a fresh file, 110-115 against 91-110 us per MiB rewriting cached data.
#define WRITE_PIECE_BYTES ((size_t)128 * 1024)

static int64_t write_fully(int fd, const uint8_t* data, size_t length, int64_t position) {
  size_t done = 0;
  while (done < length) {
    int64_t at = position + (int64_t)done;
    size_t piece = WRITE_PIECE_BYTES - (size_t)(at % (int64_t)WRITE_PIECE_BYTES);
    if (piece > length - done) piece = length - done;
    ssize_t n = pwrite(fd, data + done, piece, (off_t)at);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -(int64_t)errno;
    }
    done += (size_t)n;
  }
  return (int64_t)done;
}

// preadNowait(fd, target: Uint8Array, position) -> bytes read (0 at end of file) or -errno.
static napi_value pread_nowait(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 3) {
    napi_throw_type_error(env, "EINVAL", "preadNowait(fd, target, position)");
    return NULL;
  }
  int32_t fd;
  int64_t position;
  uint8_t* data;
  size_t length;
  CHECK(env, napi_get_value_int32(env, argv[0], &fd));
  CHECK(env, napi_get_value_int64(env, argv[2], &position));
  if (get_bytes(env, argv[1], &data, &length) != 0 || position < 0) {
    napi_throw_type_error(env, "EINVAL", "preadNowait: target must be a Uint8Array, position >= 0");
    return NULL;
  }
  return make_number(env, (double)read_fully(fd, data, length, position, RWF_NOWAIT));
}

typedef struct {
  int32_t fd;
  uint8_t* data;
  size_t length;
  int64_t position;
  int64_t result;
} batch_op;

typedef struct {
  napi_async_work work;
  napi_ref callback;
  // Holds the JS array of buffers so their memory stays alive while the pool thread uses it.
  napi_ref buffers;
  int is_write;
  size_t count;
  batch_op ops[];
} batch;

static void batch_execute(napi_env env, void* data) {
  (void)env;
  batch* b = (batch*)data;
  for (size_t i = 0; i < b->count; i++) {
    batch_op* op = &b->ops[i];
    op->result = b->is_write ? write_fully(op->fd, op->data, op->length, op->position)
                             : read_fully(op->fd, op->data, op->length, op->position, 0);
  }
}

static void batch_complete(napi_env env, napi_status status, void* data) {
  batch* b = (batch*)data;
  napi_value callback, results_buffer, results, global, ignored;
  double* out;
  int ok = napi_get_reference_value(env, b->callback, &callback) == napi_ok &&
           napi_create_arraybuffer(env, b->count * sizeof(double), (void**)&out, &results_buffer) == napi_ok &&
           napi_create_typedarray(env, napi_float64_array, b->count, results_buffer, 0, &results) == napi_ok &&
           napi_get_global(env, &global) == napi_ok;
  if (ok) {
    for (size_t i = 0; i < b->count; i++) {
      out[i] = status == napi_ok ? (double)b->ops[i].result : -(double)ECANCELED;
    }
    // An exception thrown by the callback stays pending and reaches process 'uncaughtException'.
    napi_call_function(env, global, callback, 1, &results, &ignored);
  } else {
    napi_throw_error(env, "EADDON", "shorthorn_file_io: cannot deliver a batch's results");
  }
  napi_delete_reference(env, b->callback);
  napi_delete_reference(env, b->buffers);
  napi_delete_async_work(env, b->work);
  free(b);
}

// submit(isWrite, buffers: Uint8Array[], fdAndPosition: Float64Array (2 per op), done(results: Float64Array))
// Runs the operations in order on one pool thread; results[i] is bytes done or -errno.
static napi_value submit(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  bool is_write, is_array;
  uint32_t count;
  if (argc != 4 || napi_get_value_bool(env, argv[0], &is_write) != napi_ok ||
      napi_is_array(env, argv[1], &is_array) != napi_ok || !is_array ||
      napi_get_array_length(env, argv[1], &count) != napi_ok || count == 0 || count > BATCH_MAX) {
    napi_throw_type_error(env, "EINVAL", "submit(isWrite, buffers[1..1024], fdAndPosition, done)");
    return NULL;
  }
  napi_valuetype callback_type;
  uint8_t* meta_data;
  size_t meta_length;
  napi_typedarray_type meta_type;
  void* meta_base;
  napi_value meta_buffer;
  size_t meta_offset;
  bool meta_is_typed;
  CHECK(env, napi_typeof(env, argv[3], &callback_type));
  CHECK(env, napi_is_typedarray(env, argv[2], &meta_is_typed));
  if (callback_type != napi_function || !meta_is_typed) {
    napi_throw_type_error(env, "EINVAL", "submit: fdAndPosition must be a Float64Array, done a function");
    return NULL;
  }
  CHECK(env, napi_get_typedarray_info(env, argv[2], &meta_type, &meta_length, &meta_base, &meta_buffer, &meta_offset));
  if (meta_type != napi_float64_array || meta_length != 2 * (size_t)count) {
    napi_throw_type_error(env, "EINVAL", "submit: fdAndPosition must hold 2 numbers per buffer");
    return NULL;
  }
  meta_data = (uint8_t*)meta_base;
  const double* meta = (const double*)meta_data;
  batch* b = (batch*)calloc(1, sizeof(batch) + count * sizeof(batch_op));
  if (b == NULL) {
    napi_throw_error(env, "ENOMEM", "submit: out of memory");
    return NULL;
  }
  b->is_write = is_write;
  b->count = count;
  for (uint32_t i = 0; i < count; i++) {
    napi_value element;
    batch_op* op = &b->ops[i];
    if (napi_get_element(env, argv[1], i, &element) != napi_ok || get_bytes(env, element, &op->data, &op->length) != 0 ||
        meta[2 * i + 1] < 0) {
      free(b);
      napi_throw_type_error(env, "EINVAL", "submit: every buffer must be a Uint8Array, every position >= 0");
      return NULL;
    }
    op->fd = (int32_t)meta[2 * i];
    op->position = (int64_t)meta[2 * i + 1];
  }
  napi_value name;
  if (napi_create_string_utf8(env, "shorthorn_file_io", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_reference(env, argv[3], 1, &b->callback) != napi_ok ||
      napi_create_reference(env, argv[1], 1, &b->buffers) != napi_ok ||
      napi_create_async_work(env, NULL, name, batch_execute, batch_complete, b, &b->work) != napi_ok ||
      napi_queue_async_work(env, b->work) != napi_ok) {
    // Leaks the references on this path; it only happens when N-API itself is failing.
    free(b);
    napi_throw_error(env, "EADDON", "submit: cannot queue the batch");
    return NULL;
  }
  return NULL;
}

// dropCache(fd) -> 0 or -errno: posix_fadvise(DONTNEED) on the whole file, so tests can make
// the next read miss the page cache (dirty pages must be synced first).
static napi_value drop_cache(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 1 || napi_get_value_int32(env, argv[0], &fd) != napi_ok) {
    napi_throw_type_error(env, "EINVAL", "dropCache(fd)");
    return NULL;
  }
  int rc = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  return make_number(env, rc == 0 ? 0 : -(double)rc);
}

// mallocTrim() -> 1 when memory was given back to the kernel, else 0.
static napi_value malloc_trim_all(napi_env env, napi_callback_info info) {
  (void)info;
  return make_number(env, malloc_trim(0));
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"preadNowait", NULL, pread_nowait, NULL, NULL, NULL, napi_enumerable, NULL},
      {"submit", NULL, submit, NULL, NULL, NULL, napi_enumerable, NULL},
      {"dropCache", NULL, drop_cache, NULL, NULL, NULL, napi_enumerable, NULL},
      {"mallocTrim", NULL, malloc_trim_all, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  CHECK(env, napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props));
  napi_value batch_max;
  CHECK(env, napi_create_uint32(env, BATCH_MAX, &batch_max));
  CHECK(env, napi_set_named_property(env, exports, "batchMax", batch_max));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
