"""What this CPU computes natively: the facts the inference paths are chosen by (``supportbot models`` shows them)."""

from __future__ import annotations

import dataclasses
import functools
import os
import platform


@dataclasses.dataclass(frozen=True)
class CpuFeatures:
    model: str
    cores: int
    avx2: bool
    avx512: bool
    vnni: bool  # int8 dot products (AVX512-VNNI or AVX-VNNI): int8 inference gains most
    bf16: bool  # AVX512-BF16 or AMX: bf16 matmuls run natively, not emulated

    def summary(self) -> str:
        isa = [name for name, on in (("AVX2", self.avx2), ("AVX-512", self.avx512), ("VNNI", self.vnni),
                                     ("bf16", self.bf16)) if on]
        return f"{self.model}, {self.cores} cores, {' '.join(isa) or 'no AVX2'}"


def _flags() -> tuple[str, set[str]]:
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name":
                    model = value.strip()
                elif key in ("flags", "Features") and not flags:
                    flags = set(value.split())
    except OSError:  # not Linux: fall back to what torch says, if it is importable
        pass
    return model, flags


@functools.lru_cache(maxsize=1)
def cpu_features() -> CpuFeatures:
    model, flags = _flags()
    if not flags:
        try:
            import torch

            capability = torch.backends.cpu.get_cpu_capability()
        except (ImportError, AttributeError):
            capability = ""
        flags = {"avx2"} if capability.startswith("AVX") else set()
        if capability == "AVX512":
            flags |= {"avx512f"}
    return CpuFeatures(
        model=model,
        cores=os.cpu_count() or 1,
        avx2="avx2" in flags,
        avx512="avx512f" in flags,
        vnni=bool(flags & {"avx512_vnni", "avx_vnni", "amx_int8"}),
        bf16=bool(flags & {"avx512_bf16", "amx_bf16"}),
    )
