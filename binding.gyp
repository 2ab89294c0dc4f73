{
  "targets": [
    {
      "target_name": "advcorrect_native",
      "sources": ["<!@(node scripts/native-sources.cjs)"],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "native"
      ],
      "defines": ["NDEBUG", "NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-std=gnu++20"],
      "cflags_cc": ["-std=c++17", "-O3", "-march=native", "-fexceptions", "-fopenmp", "-Wno-maybe-uninitialized", "<!@(pkg-config --cflags-only-I eigen3 | sed s/-I/-isystem/g)"],
      "ldflags": ["-fopenmp"]
    }
  ]
}
