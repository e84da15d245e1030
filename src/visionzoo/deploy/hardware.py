"""What this CPU is and what it does natively: its name, the ISA level torch's kernels use, native bf16 and
int8 dot products (VNNI, AMX).

Reduced precision pays only where the hardware does the arithmetic: on a CPU without bf16 instructions oneDNN
emulates bf16 through fp32 conversions, which is slower than plain fp32. So bf16 is used only where the CPU
reports AVX-512-BF16 or AMX (x86) or the BF16 extension (Arm), and oneDNN is there to use it.
"""

from __future__ import annotations

import functools
import platform
import subprocess
from dataclasses import dataclass

import torch

# /proc/cpuinfo flags that mean bf16 dot products in hardware
_X86_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
_ARM_BF16_FLAGS = frozenset({"bf16"})
# /proc/cpuinfo flags of int8 dot products: without them, u8 x s8 products are summed in pairs into int16
# (vpmaddubsw), which can saturate; onnxruntime then advises 7-bit weights ("reduce_range")
_X86_VNNI_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "amx_int8"})
_ARM_INT8_DOT_FLAGS = frozenset({"asimddp", "i8mm"})
_AMX_FLAGS = frozenset({"amx_int8", "amx_bf16", "amx_tile"})


@dataclass(frozen=True)
class CpuInfo:
    """The CPU facts a benchmark row or a precision choice needs."""

    model: str  # e.g. 'AMD EPYC 9654 96-Core Processor'
    isa: str  # the kernel level torch dispatches to: 'AVX512', 'AVX2', 'DEFAULT', ...
    native_bf16: bool
    threads: int  # torch.get_num_threads() when asked
    vnni: bool = False  # int8 dot products in one instruction (x86 VNNI/AMX, Arm dot product)
    amx: bool = False

    @property
    def features(self) -> str:
        """The int8/bf16 features a benchmark row names, e.g. 'VNNI, bf16'."""
        names = [name for name, has in (("VNNI", self.vnni), ("AMX", self.amx), ("bf16", self.native_bf16))
                 if has]
        return ", ".join(names) or "none"


def _cpuinfo() -> tuple[str, frozenset[str]]:
    """Model name and feature flags from /proc/cpuinfo (Linux); empty where there is none."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            text = handle.read()
    except OSError:
        return "", frozenset()
    name, flags = "", set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key == "model name" and not name:
            name = value.strip()
        elif key in ("flags", "features") and not flags:
            flags = set(value.split())
    return name, frozenset(flags)


def _sysctl(key: str) -> str:
    """A macOS sysctl value, or '' elsewhere."""
    try:
        return subprocess.run(["sysctl", "-n", key], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


@functools.lru_cache(maxsize=1)
def _static_cpu_facts() -> tuple[str, bool, bool, bool]:
    name, flags = _cpuinfo()
    if platform.system() == "Darwin":
        name = name or _sysctl("machdep.cpu.brand_string")
        hardware_bf16 = _sysctl("hw.optional.arm.FEAT_BF16") == "1"
        vnni = _sysctl("hw.optional.arm.FEAT_DotProd") == "1"
    else:
        hardware_bf16 = bool(flags & (_X86_BF16_FLAGS | _ARM_BF16_FLAGS))
        vnni = bool(flags & (_X86_VNNI_FLAGS | _ARM_INT8_DOT_FLAGS))
    name = name or platform.processor() or platform.machine() or "unknown"
    return name, hardware_bf16 and _onednn_bf16(), vnni, bool(flags & _AMX_FLAGS)


def _onednn_bf16() -> bool:
    """Whether this torch build's oneDNN can run bf16 kernels on this CPU (it may be emulating them)."""
    if not torch.backends.mkldnn.is_available():
        return False
    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    try:
        return bool(check()) if check is not None else False
    except RuntimeError:
        return False


def cpu_info() -> CpuInfo:
    """Name, ISA level, native bf16, int8 dot products and the thread count of this process's CPU."""
    name, native, vnni, amx = _static_cpu_facts()
    return CpuInfo(model=name, isa=torch.backends.cpu.get_cpu_capability(), native_bf16=native,
                   threads=torch.get_num_threads(), vnni=vnni, amx=amx)


def native_bf16() -> bool:
    """True if this CPU does bf16 arithmetic in hardware and oneDNN can use it."""
    return _static_cpu_facts()[1]


def int8_dot_products() -> bool:
    """True if this CPU multiplies and sums int8 in one instruction (VNNI, AMX, Arm dot product): int8
    inference is then fast, and 8-bit weights cannot saturate the int16 pair sums of older x86 CPUs."""
    return _static_cpu_facts()[2]

