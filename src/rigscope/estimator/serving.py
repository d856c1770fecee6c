"""What a server adds to the engine's own speed, as a client measures it: per request
(parsing the HTTP request, tokenizing the prompt, giving it a slot) and per generated token
(sampling over the vocabulary, detokenizing, one streamed chunk), and on the CPU the share
of cores it gives the model.

llama-server's figures are measured on the 2-core machine this project runs on
(benchmarks/measure_serving.py: time to first token minus llama-bench's prefill of the same
prompt, inter-token latency minus llama-bench's decode step at the same depth); the others
are stated assumptions from each server's design (their basis line says so).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Server:
    name: str
    request_s: float  # per request, beyond the engine's prefill
    token_s: float  # per generated token, beyond the decode step (for a 32k vocabulary)
    cpu_threads: float  # share of the cores the model computes on, CPU only
    source: str

    def token_seconds(self, vocab: int) -> float:
        """Sampling walks the logits: its share grows with the vocabulary."""
        return self.token_s * max(vocab, 1) / 32000


SERVERS: dict[str, Server] = {s.name: s for s in (
    Server("llama-server", request_s=0.015, token_s=0.00004, cpu_threads=1.0,
           source="measured here: +15 ms to first token for a 16-token prompt, +0.06 ms per "
                  "token with SmolLM2's 49k vocabulary (benchmarks/measure_serving.py, 2 cores)"),
    Server("ollama", request_s=0.025, token_s=0.00008, cpu_threads=1.0,
           source="assumed: llama-server's costs plus Ollama's Go front end relaying each "
                  "request and chunk to its runner"),
    Server("llama-cpp-python", request_s=0.02, token_s=0.0004, cpu_threads=0.5,
           source="assumed: a Python loop per token (sampling wrapper, detokenizing, "
                  "pydantic SSE), one request at a time, n_threads = half the cores by default"),
    Server("vllm", request_s=0.012, token_s=0.0006, cpu_threads=1.0,
           source="assumed: the OpenAI server's tokenization and scheduling per request, "
                  "detokenization and output processing per token"),
)}
ENGINE_SERVER = {"llama.cpp": "llama-server", "ollama": "ollama",
                 "llama-cpp-python": "llama-cpp-python", "vllm": "vllm"}


def server_for(engine: str) -> Server | None:
    """The server an engine's users talk to (None: no server modelled, e.g. transformers)."""
    name = ENGINE_SERVER.get(engine)
    return SERVERS[name] if name else None

