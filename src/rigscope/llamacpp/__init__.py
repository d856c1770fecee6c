"""The llama.cpp this project builds and runs on this machine: build, locate, supervise, probe.

`build` compiles llama.cpp's own programs (llama-server, llama-bench, llama-quantize) from the
source tree llama-cpp-python's sdist vendors, with a portable instruction set; `server` starts
llama-server as a supervised process; `probe` measures buffers and speed with them.
"""
