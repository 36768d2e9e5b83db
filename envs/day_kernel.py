"""One simulated day, compiled: the per-(env, provider) arithmetic of :func:`envs.dynamics.simulate_day`.

Why compiled: written with numpy, a day is ~300 small array operations and random draws, so a single env
spends its time in call overhead and a 1,024-env batch in temporaries. Here each (env, provider) cell runs its
day as scalar code in one numba loop. Its randomness arrives as one standard normal per draw, drawn by numpy from
the caller's ``np.random.Generator`` (same seed, same episode): a binomial is normal-approximated from it, or
drawn exactly by inversion of its CDF at the normal's probability. So the kernel needs no numba runtime
(``_nrt=False``): no allocation, no reference counts, which cost more than the arithmetic when numba passes
arrays or generators between functions. The equations are those of ``docs/model.md``; the numbers
arrive in :class:`DayRules` (built from the scenario and ``envs.dynamics``' constants at every call, so a
patched constant takes effect) and the episode's :class:`~envs.families.EpisodeParams` arrays.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
from numba import njit

_NO_RUNTIME: dict[str, Any] = {"cache": True, "_nrt": False, "error_model": "numpy"}
compiled = njit(**_NO_RUNTIME)
"""Compiled, cached, without numba's runtime (no allocation, no reference counts) and with numpy's float error
model (no Python exception checks around divisions)."""

EXACT_BINOMIAL_BELOW = 9.0
"""Binomial draws whose variance n p (1 - p) is at least this use the normal approximation (rounded, clipped to
[0, n]); smaller ones are exact (inversion, at most ~40 steps). The approximation's error is far below the
model's own uncertainty."""

# Columns of the day's [n, P, N_OUTPUTS] int64 output, in the order of envs.dynamics.COUNT_FIELDS + ("available",)
# (cell-major: writing [N_OUTPUTS, n, P] from the loop costs 9x more).
(SENT, DELIVERED, INBOX, JUNK, DEFERRED, BOUNCED, BLOCKED, COMPLAINTS, OPENS, EXPIRED, FIRST_ATTEMPTS, OVERFLOW,
 OVERFLOW_DELIVERED, OVERFLOW_INBOX, OVERFLOW_BOUNCED, OVERFLOW_COMPLAINTS, TRAP_HITS, QUEUED, SPIKE_EXCESS,
 AVAILABLE) = range(20)
N_OUTPUTS = 20
DRAWS_PER_CELL = 13
"""Standard normals one (env, provider) cell consumes per day, whether or not it uses them all."""


class DayRules(NamedTuple):
    """The scalars one day needs: the scenario's numbers and the model constants of ``envs.dynamics``."""

    # scenario
    random_order: bool
    high_reputation: float
    warm_capacity: float
    spike_allowance: float
    volume_memory: float
    capacity_noise: float
    inbox_noise: float
    engagement_noise: float
    cold_reputation: float
    register_volume: float
    keep_warm_volume: float
    idle_days_to_cold: float
    complaint_safe: float
    complaint_limit: float
    complaint_memory_days: float
    strain_memory_days: float
    listing_threshold: float
    listing_half_life_days: float
    spike_penalty: float
    complaint_penalty: float
    bounce_penalty: float
    trap_penalty: float
    strain_penalty: float
    # model constants (envs.dynamics)
    block_reputation: float
    block_max: float
    pressure_block_max: float
    pressure_junk_max: float
    escalation_block_max: float
    escalation_junk_max: float
    listing_block_max: float
    inbox_reputation_low: float
    inbox_reputation_high: float
    bounce_safe: float
    capacity_curve: float
    reference_open_rate: float
    min_growth_reputation: float
    min_pressure_base: float
    # derived from the scenario
    log_escalation_start: float
    log_escalation_full: float


@compiled
def _clip(x: float, lo: float, hi: float) -> float:
    return min(max(x, lo), hi)


@njit(cache=True)
def standard_normals(rng: np.random.Generator, out: np.ndarray) -> None:
    """Fill ``out`` with standard normals from ``rng`` (numba's draw shares numpy's bit generator and is ~3x
    faster than numpy's own bulk call on this machine, benchmarks/bench_env.py)."""
    flat = out.reshape(-1)
    for k in range(flat.shape[0]):
        flat[k] = rng.standard_normal()


@compiled
def _binomial(z: float, expected: bool, n: int, p: float) -> int:
    """Binomial(n, p) from the standard normal ``z``: normal-approximated for large variances, exact by inversion
    at the probability Phi(z) for small ones; the rounded mean when ``expected`` (the oracle's look-ahead)."""
    if n <= 0 or p <= 0.0:
        return 0
    if p >= 1.0:
        return n
    mean = n * p
    if expected:
        return min(int(math.floor(mean + 0.5)), n)
    var = mean * (1.0 - p)
    if var >= EXACT_BINOMIAL_BELOW:
        return int(_clip(math.floor(mean + math.sqrt(var) * z + 0.5), 0.0, n))
    u = 0.5 * math.erfc(-z / math.sqrt(2.0))  # Phi(z), uniform on (0, 1)
    if p > 0.5:  # inversion from the short tail: successes ~ n - Binomial(n, 1 - p)
        return n - _binomial_inversion(u, n, 1.0 - p)
    return _binomial_inversion(u, n, p)


@compiled
def _binomial_inversion(u: float, n: int, p: float) -> int:
    """The smallest x with CDF(x) >= u for Binomial(n, p), p <= 0.5 and n p small (a short walk up the PMF)."""
    q = 1.0 - p
    ratio = p / q
    pmf = math.exp(n * math.log1p(-p))
    cdf = pmf
    x = 0
    while u > cdf and x < n:
        x += 1
        pmf *= ratio * (n - x + 1) / x
        cdf += pmf
        if pmf < 1e-300:  # float rounding left the CDF a hair below u
            break
    return x


@compiled
def _lognormal(z: float, expected: bool, sigma: float) -> float:
    """The day's multiplicative noise exp(sigma z): 1 when there is none or when ``expected``."""
    if sigma <= 0.0 or expected:
        return 1.0
    return math.exp(sigma * z)


@compiled
def _slice_rates(share: np.ndarray, i: int, lo: float, hi: float, random_order: bool, a: np.ndarray,
                 b: np.ndarray) -> tuple[float, float]:
    """Per-email rates ``a`` and ``b`` [n, K] of env ``i``'s slice [lo, hi) of a provider's mail, most engaged
    tier first (every slice has the list's composition when ``random_order``)."""
    width = hi - lo
    ra, rb, before = 0.0, 0.0, 0.0
    for k in range(share.shape[1]):
        if random_order or width <= 0.0:
            weight = share[i, k]
        else:
            weight = max(min(hi, before + share[i, k]) - max(lo, before), 0.0) / max(width, 1e-12)
        before += share[i, k]
        ra += weight * a[i, k]
        rb += weight * b[i, k]
    return ra, rb


@compiled
def throttle_limit(r: DayRules, reputation: float, peak: float, cold: float) -> float:
    """Emails/day a provider accepts before deferring: min(reputation ceiling, spike limit)."""
    progress = _clip((reputation - r.block_reputation) / (r.high_reputation - r.block_reputation), 0.0, 1.0)
    ceiling = cold * (r.warm_capacity / cold) ** (progress ** r.capacity_curve)
    damaged = _clip(reputation / r.block_reputation, 0.0, 1.0)  # below BAD: less than a new IP gets
    return min(ceiling * damaged, max(cold, r.spike_allowance * peak))


@compiled
def throttle_limits(r: DayRules, reputation: np.ndarray, peak: np.ndarray, cold: np.ndarray,
                    out: np.ndarray) -> None:
    """:func:`throttle_limit` over [n, P] arrays into ``out`` (the oracle's planning)."""
    for i in range(reputation.shape[0]):
        for j in range(reputation.shape[1]):
            out[i, j] = throttle_limit(r, reputation[i, j], peak[i, j], cold[i, j])


@compiled
def _escalation(r: DayRules, strain: float) -> float:
    """0..1: how far a provider has escalated a sustained excess (0 below ``escalation_start`` x its limit);
    ``strain`` is a weighted log excess."""
    return _clip((strain - r.log_escalation_start) / (r.log_escalation_full - r.log_escalation_start), 0.0, 1.0)


@compiled
def _block_probability(r: DayRules, reputation: float, pressure: float, escalated: float, listing: float,
                       escalates_to_block: bool) -> float:
    """Share of valid attempts rejected at SMTP (5xx); ``escalated`` is :func:`_escalation`'s level."""
    by_reputation = r.block_max * _clip((r.block_reputation - reputation) / r.block_reputation, 0.0, 1.0)
    over = _clip((pressure - r.complaint_limit) / r.complaint_limit, 0.0, 1.0)
    escalated = r.escalation_block_max * escalated if escalates_to_block else 0.0
    listed = r.listing_block_max * _clip(listing / r.listing_threshold - 1.0, 0.0, 1.0)
    return 1.0 - (1.0 - by_reputation) * (1.0 - r.pressure_block_max * over) * (1.0 - escalated) * (1.0 - listed)


@compiled
def _inbox_probability(r: DayRules, inbox_rate: float, reputation: float, pressure: float, escalated: float,
                       escalates_to_block: bool) -> float:
    """Share of accepted mail placed in the inbox (before the day's noise); ``escalated`` as above."""
    placement = _clip((reputation - r.inbox_reputation_low) / (r.inbox_reputation_high - r.inbox_reputation_low),
                      0.0, 1.0)
    excess = _clip((pressure - r.complaint_safe) / (r.complaint_limit - r.complaint_safe), 0.0, 1.0)
    bulked = 0.0 if escalates_to_block else r.escalation_junk_max * escalated
    return inbox_rate * placement * (1.0 - r.pressure_junk_max * excess) * (1.0 - bulked)


@compiled
def _take_oldest(queue: np.ndarray, i: int, j: int, amount: int) -> int:
    """Remove ``amount`` from ``queue[i, j]`` (by age) oldest-first, in place; return what was taken."""
    remaining = amount
    for age in range(queue.shape[2] - 1, -1, -1):
        take = min(queue[i, j, age], remaining)
        queue[i, j, age] -= take
        remaining -= take
    return amount - remaining


@compiled
def _age(queue: np.ndarray, i: int, j: int, newest: int) -> int:
    """Shift ``queue[i, j]`` one day older, put ``newest`` at age 0, return what fell off the end."""
    last = queue.shape[2] - 1
    expired = queue[i, j, last]
    for age in range(last, 0, -1):
        queue[i, j, age] = queue[i, j, age - 1]
    queue[i, j, 0] = newest
    return expired


@compiled
def _total(queue: np.ndarray, i: int, j: int) -> int:
    """Mail in ``queue[i, j]``, every age."""
    total = 0
    for age in range(queue.shape[2]):
        total += queue[i, j, age]
    return total


@compiled
def _requeue_deferred(retry: np.ndarray, i: int, j: int, fresh_valid: int, deferred: int,
                      parts: np.ndarray) -> int:
    """Replace ``retry[i, j]`` by today's deferred mail by age, proportional to each age's share of the attempts
    (today's first attempts take the rounding remainder); return what was deferred on its last day (expired).
    ``parts`` [R + 1] is scratch space."""
    n_ages = retry.shape[2]
    if deferred == 0:
        for age in range(n_ages):
            retry[i, j, age] = 0
        return 0
    frac = deferred / max(fresh_valid + _total(retry, i, j), 1)  # deferred <= the pools' total
    older = 0
    for age in range(n_ages):
        parts[age + 1] = int(math.floor(retry[i, j, age] * frac))
        older += parts[age + 1]
    parts[0] = deferred - older
    excess = max(parts[0] - fresh_valid, 0)
    if excess > 0:  # rare rounding corner: move the excess to the youngest age with room
        parts[0] -= excess
        for age in range(1, n_ages + 1):
            move = min(excess, retry[i, j, age - 1] - parts[age])
            parts[age] += move
            excess -= move
    for age in range(n_ages):
        retry[i, j, age] = parts[age]
    return int(parts[n_ages])


@compiled
def simulate_cells(
    r: DayRules, share: np.ndarray, demand: np.ndarray, pool_headroom: np.ndarray, tier_share: np.ndarray,
    tier_complaint: np.ndarray, tier_open: np.ndarray, tier_unknown: np.ndarray, tier_trap: np.ndarray,
    cold_capacity: np.ndarray, inbox_rate: np.ndarray, pool_inbox_rate: np.ndarray, reputation_rate: np.ndarray,
    machine_open_share: np.ndarray, escalates_to_block: np.ndarray, machine_opens: int,
    reputation: np.ndarray, peak: np.ndarray, sent_peak: np.ndarray, complaints_w: np.ndarray,
    inbox_w: np.ndarray, strain: np.ndarray, listing: np.ndarray, retry: np.ndarray, backlog: np.ndarray,
    normals: np.ndarray, expected: bool, out: np.ndarray, parts: np.ndarray,
) -> None:
    """Run one day for every (env, provider) cell, updating the per-provider state arrays in place and writing the
    day's counts into ``out`` [n, P, N_OUTPUTS] (columns named at the top of this module). ``normals``
    [n, P, DRAWS_PER_CELL] are the day's standard normals; ``parts`` [R + 1] is scratch space."""
    n, n_providers = share.shape
    complaint_memory = math.exp(-1.0 / r.complaint_memory_days)
    strain_memory = math.exp(-1.0 / r.strain_memory_days)
    listing_fade = 0.5 ** (1.0 / r.listing_half_life_days)
    activity_span = math.log(r.keep_warm_volume / r.register_volume)
    idle_fade = 1.0 - 0.1 ** (1.0 / r.idle_days_to_cold)
    for i in range(n):
        for j in range(n_providers):
            cold = cold_capacity[i, j]
            z = normals[i, j]
            to_block = escalates_to_block[j]

            # 1. Routing: the new IP takes its share of the available mail, the overflow route the next slice up
            # to its headroom, the rest waits (a shared pool's unlimited headroom leaves nothing waiting).
            waiting = _total(backlog, i, j)
            available = demand[i, j] + waiting
            on_ip = int(math.floor(share[i, j] * available))
            rest = available - on_ip
            headroom = pool_headroom[i, j]
            overflow = rest if math.isinf(headroom) else min(rest, int(math.floor(headroom)))
            taken = on_ip + overflow
            from_backlog = _take_oldest(backlog, i, j, min(taken, waiting))
            expired_backlog = _age(backlog, i, j, demand[i, j] - (taken - from_backlog))

            whole = max(available, 1)
            ip_hi, pool_hi = on_ip / whole, taken / whole
            noise = _lognormal(z[0], expected, r.engagement_noise)
            complaint_p, open_p = _slice_rates(tier_share, i, 0.0, ip_hi, r.random_order, tier_complaint, tier_open)
            complaint_p, open_p = complaint_p * noise, open_p * noise
            unknown_p, trap_p = _slice_rates(tier_share, i, 0.0, ip_hi, r.random_order, tier_unknown, tier_trap)
            pool_unknown_p, pool_complaint_p = _slice_rates(tier_share, i, ip_hi, pool_hi, r.random_order,
                                                            tier_unknown, tier_complaint)

            # 2. The provider's answer on the new IP: hard bounces, trap hits, blocks, throttling.
            retries = _total(retry, i, j)
            bounced = _binomial(z[1], expected, on_ip, unknown_p)
            pool_bounced = _binomial(z[2], expected, overflow, pool_unknown_p)
            valid = on_ip - bounced + retries
            pool_delivered = overflow - pool_bounced
            pressure = complaints_w[i, j] / max(inbox_w[i, j], r.min_pressure_base)
            escalated = _escalation(r, strain[i, j])
            block_p = _block_probability(r, reputation[i, j], pressure, escalated, listing[i, j], to_block)
            trap_hits = _binomial(z[3], expected, on_ip - bounced, trap_p)
            blocked = _binomial(z[4], expected, valid, block_p)
            pool_inbox = _binomial(z[5], expected, pool_delivered, pool_inbox_rate[i, j])
            limit = throttle_limit(r, reputation[i, j], peak[i, j], cold)
            limit *= _lognormal(z[6], expected, r.capacity_noise)
            accepted = min(valid - blocked, int(math.floor(limit)))
            deferred = valid - blocked - accepted

            # 3. Retry queue: deferred mail ages; what was deferred on its last retry day expires.
            expired_retry = _requeue_deferred(retry, i, j, on_ip - bounced, deferred, parts)

            # 4. Placement, opens and complaints on the new IP; the overflow route's complaints; machine opens.
            inbox_p = _inbox_probability(r, inbox_rate[i, j], reputation[i, j], pressure, escalated, to_block)
            if r.inbox_noise > 0.0 and not expected:
                inbox_p += r.inbox_noise * z[7]
            inbox = _binomial(z[8], expected, accepted, inbox_p)
            pool_complaints = _binomial(z[9], expected, pool_inbox, pool_complaint_p)
            complaints = _binomial(z[10], expected, inbox, complaint_p)
            real_opens = _binomial(z[11], expected, inbox, open_p)
            machine = 0
            if j == machine_opens:
                machine = _binomial(z[12], expected, inbox - real_opens, machine_open_share[i])

            # 5. Hidden state: complaint pressure, strain and listing, then reputation (docs/model.md, 5).
            complaints_w[i, j] = complaint_memory * complaints_w[i, j] + complaints
            inbox_w[i, j] = complaint_memory * inbox_w[i, j] + inbox
            pressure = complaints_w[i, j] / max(inbox_w[i, j], r.min_pressure_base)
            excess = (on_ip - bounced) / max(limit, 1.0)
            strain[i, j] = strain_memory * strain[i, j] + (1.0 - strain_memory) * math.log(max(excess, 1.0))
            listing[i, j] = listing_fade * listing[i, j] + trap_hits

            activity = _clip(math.log(max(accepted, 1) / r.register_volume) / activity_span, 0.0, 1.0)
            engagement = min(open_p / r.reference_open_rate, 1.0)
            complaint_gate = _clip(1.0 - (pressure - r.complaint_safe) / (r.complaint_limit - r.complaint_safe),
                                   0.0, 1.0)
            offered = valid - blocked
            throttle_gate = accepted / offered if offered > 0 else 1.0
            rep = reputation[i, j]
            logistic = max(rep, r.min_growth_reputation) * (1.0 - rep)
            growth = reputation_rate[i, j] * activity * engagement * complaint_gate * throttle_gate * logistic
            # A new IP's first day is judged against its cold acceptance: no history is no licence to burst.
            reference = max(sent_peak[i, j], cold)
            spike = r.spike_penalty * _clip(on_ip / reference - r.spike_allowance, 0.0, 2.0)
            over = on_ip - r.spike_allowance * reference
            spike_excess = int(math.ceil(over)) if over > 0.0 else 0  # emails over the allowance
            complaint = r.complaint_penalty * _clip((pressure - r.complaint_limit) / r.complaint_limit, 0.0, 3.0)
            bounce = r.bounce_penalty * max(bounced / max(on_ip, 1) - r.bounce_safe, 0.0)
            traps = r.trap_penalty * trap_hits
            escalated = r.strain_penalty * _escalation(r, strain[i, j])
            idle = (1.0 - activity) * idle_fade * max(rep - r.cold_reputation, 0.0)
            reputation[i, j] = _clip(rep + growth - spike - complaint - bounce - traps - escalated - idle, 0.0, 1.0)
            peak[i, j] = max(accepted, r.volume_memory * peak[i, j])
            sent_peak[i, j] = max(on_ip, r.volume_memory * sent_peak[i, j])

            out[i, j, SENT] = on_ip + retries
            out[i, j, DELIVERED] = accepted
            out[i, j, INBOX] = inbox
            out[i, j, JUNK] = accepted - inbox
            out[i, j, DEFERRED] = deferred
            out[i, j, BOUNCED] = bounced
            out[i, j, BLOCKED] = blocked
            out[i, j, COMPLAINTS] = complaints
            out[i, j, OPENS] = real_opens + machine
            out[i, j, EXPIRED] = expired_retry + expired_backlog
            out[i, j, FIRST_ATTEMPTS] = on_ip
            out[i, j, OVERFLOW] = overflow
            out[i, j, OVERFLOW_DELIVERED] = pool_delivered
            out[i, j, OVERFLOW_INBOX] = pool_inbox
            out[i, j, OVERFLOW_BOUNCED] = pool_bounced
            out[i, j, OVERFLOW_COMPLAINTS] = pool_complaints
            out[i, j, TRAP_HITS] = trap_hits
            out[i, j, QUEUED] = _total(retry, i, j) + _total(backlog, i, j)
            out[i, j, SPIKE_EXCESS] = spike_excess
            out[i, j, AVAILABLE] = available
