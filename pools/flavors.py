"""How a feature class's CPU priority becomes flavor extra specs on OpenStack.

Nova's libvirt driver turns three extra specs of a flavor into the guest's
`<cputune>` when it boots the guest, and libvirt hands them to the host's cgroup
CPU controller:

- `quota:cpu_shares`: a relative weight of the whole VM against the other VMs on
  the host. It only matters when the host's CPUs are busy; an idle host lets
  every VM run. The class's `weight` maps to `round(1024 * weight)`, so weight 1
  is what cgroups v1 gives a task by default. The value is kept within 2..10000,
  the range both cgroup versions accept (v1 takes 2..262144, v2's `cpu.weight`
  1..10000): a weight above 9.77 all gets the top value.
- `quota:cpu_period` and `quota:cpu_quota`: within every period (microseconds),
  each vCPU may run for at most the quota. A cap of N % is a period of 100 ms
  (the kernel's default) and a quota of N % of it; the lowest cap, 1 %, is the
  smallest quota the hypervisor takes (1000 µs). An uncapped class sets neither,
  and applying it removes both from the flavor.

The paper's boost factor has no counterpart on KVM and sets nothing here.

Only the keys in `MANAGED_KEYS` are DeskOps's: other extra specs a flavor
carries (CPU pinning, NUMA, ...) are the cloud operator's and are left alone."""

import math

CPU_SHARES = "quota:cpu_shares"
CPU_PERIOD = "quota:cpu_period"
CPU_QUOTA = "quota:cpu_quota"
MANAGED_KEYS = (CPU_SHARES, CPU_PERIOD, CPU_QUOTA)

SHARES_PER_WEIGHT = 1024
# Both cgroup versions accept these shares (v1: 2..262144, v2: 1..10000).
CPU_SHARES_MIN = 2
CPU_SHARES_MAX = 10000
# 100 ms, the kernel's default CFS period; the hypervisor takes 1 ms..1 s.
CPU_PERIOD_US = 100_000
# The smallest quota the hypervisor takes (1 ms), reached by a 1 % cap.
CPU_QUOTA_MIN_US = 1000
CAP_MAX_PERCENT = 100


def cpu_shares(weight: float) -> int:
    """The relative CPU weight of a VM of this class for the hypervisor."""
    if not isinstance(weight, int | float) or not math.isfinite(weight) or weight < 0:
        raise ValueError(f"A feature class weight must be a number of 0 or more, not {weight!r}.")
    # Clamped before rounding: a huge weight must not overflow.
    return round(min(max(SHARES_PER_WEIGHT * weight, CPU_SHARES_MIN), CPU_SHARES_MAX))


def cpu_quota_us(cap_percent: int) -> int | None:
    """Microseconds per `CPU_PERIOD_US` one vCPU may run; None when uncapped."""
    if isinstance(cap_percent, bool) or not isinstance(cap_percent, int):
        raise ValueError(f"A CPU cap must be a whole percentage, not {cap_percent!r}.")
    if not 0 <= cap_percent <= CAP_MAX_PERCENT:
        raise ValueError(
            f"A CPU cap must be 0 (uncapped) to {CAP_MAX_PERCENT} %, not {cap_percent}."
        )
    if cap_percent == 0:
        return None
    return max(cap_percent * CPU_PERIOD_US // 100, CPU_QUOTA_MIN_US)


def class_extra_specs(feature_class) -> dict[str, str]:
    """The extra specs the flavors of the class's pools must carry, as Nova stores
    them (strings). Only the `MANAGED_KEYS` appear; an uncapped class has no quota
    and no period. Raises ValueError for a class whose values the hypervisor
    could not take (the model's validators keep them out of the database)."""
    specs = {CPU_SHARES: str(cpu_shares(feature_class.weight))}
    quota = cpu_quota_us(feature_class.cpu_cap_percent)
    if quota is not None:
        specs[CPU_PERIOD] = str(CPU_PERIOD_US)
        specs[CPU_QUOTA] = str(quota)
    return specs


def specs_change(current: dict[str, str], wanted: dict[str, str]) -> tuple[dict, list[str]]:
    """What to set and which keys to remove so that a flavor's managed keys become
    `wanted`; keys that are not DeskOps's are never touched."""
    to_set = {key: value for key, value in wanted.items() if current.get(key) != value}
    to_unset = [key for key in MANAGED_KEYS if key in current and key not in wanted]
    return to_set, to_unset


def managed_specs(specs: dict[str, str]) -> dict[str, str]:
    """The DeskOps keys of a flavor's extra specs."""
    return {key: specs[key] for key in MANAGED_KEYS if key in specs}
