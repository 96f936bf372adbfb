{
  "targets": [
    {
      "target_name": "vitkit",
      "sources": [
        "native/addon.cc",
        "native/threadpool.cc",
        "native/kernels/gemm.cc",
        "native/kernels/peak.cc",
        "native/kernels/layernorm.cc",
        "native/kernels/gelu.cc",
        "native/kernels/softmax.cc",
        "native/kernels/attention.cc",
        "native/kernels/patch_embed.cc",
        "native/kernels/elementwise.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "native"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++17", "-O3", "-fno-math-errno", "-pthread"],
      "ldflags": ["-pthread"],
      "xcode_settings": {
        "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
        "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
        "OTHER_CPLUSPLUSFLAGS": ["-O3", "-fno-math-errno"]
      },
      "msvs_settings": { "VCCLCompilerTool": { "ExceptionHandling": 1, "AdditionalOptions": ["/O2", "/std:c++17"] } }
    }
  ]
}
