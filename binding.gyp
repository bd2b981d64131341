{
  "targets": [
    {
      "target_name": "shorthorn_file_io",
      "sources": ["native/file_io.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Werror"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
