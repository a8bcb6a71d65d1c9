"""The kernel code a profile runs, chosen once per profile (``System.mm``): the v5.x functions
of ``pcpfuzz.mm``, the v6.1 functions of ``pcpfuzz.mm6`` or the v6.12 functions of
``pcpfuzz.mm612`` (modern-kernels.md)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs

from pcpfuzz.geometry import Geometry
from pcpfuzz.mm import contig, drain, hotplug, pageset, pcp
from pcpfuzz.mm6 import contig as contig6
from pcpfuzz.mm6 import cpuhp, memory_hotplug, page_alloc
from pcpfuzz.mm6 import drain as drain6
from pcpfuzz.mm6 import pageset as pageset6
from pcpfuzz.mm612 import contig as contig612
from pcpfuzz.mm612 import cpuhp as cpuhp612
from pcpfuzz.mm612 import drain as drain612
from pcpfuzz.mm612 import memory_hotplug as memory_hotplug612
from pcpfuzz.mm612 import page_alloc as page_alloc612
from pcpfuzz.mm612 import pageset as pageset612
from pcpfuzz.profiles import Profile
from pcpfuzz.state import Task, TaskGen

if TYPE_CHECKING:
    from pcpfuzz.system import System


@attrs.frozen
class Kernel:
    """The entry points that differ between kernel generations, by kernel name."""

    boot: Callable[[System], None] | None
    """Sets up the pagesets after the boot memory is freed (None: ``System``'s v5.x boot)."""
    alloc_pages: Callable[..., TaskGen]
    free_pages: Callable[[System, Task, int, int], TaskGen]
    free_unref_page_list: Callable[[System, Task, tuple[int, ...]], TaskGen]
    drain_local_pages: Callable[[System, Task], TaskGen]
    drain_all_pages: Callable[[System, Task, bool], TaskGen]
    pagelist_sysctl: Callable[[System, Task, int], TaskGen]
    alloc_contig_range: Callable[[System, Task, int, int], TaskGen]
    offline_pages: Callable[[System, Task, int], TaskGen]
    online_pages: Callable[[System, Task, int], TaskGen]
    get_hwpoison_page: Callable[[System, Task], TaskGen]
    page_alloc_cpu_dead: Callable[[System, int], None] | None
    page_alloc_cpu_online: Callable[[System, int], None] | None
    """The CPU hotplug callbacks run as one action (None: ``cpu_hotplug`` runs them)."""
    cpu_hotplug_allowed: Callable[[System, int], bool]
    zone_high_batch: Callable[[System], tuple[int, ...]]
    """The sizing every CPU should hold outside updates (PCP-HB): (high, batch), or v6.12's
    (high_min, high_max, batch)."""
    vmstat_update: Callable[[System, Task], TaskGen] | None = None
    """The per-CPU vmstat work's pcp part (v6.12 ``decay_pcp_high``); None: not modelled."""
    cpu_hotplug: Callable[[System, Task, int, bool], TaskGen] | None = None
    """CPU down (False) or up (True) as a task with steps (None: one action)."""
    contig_alignment: Callable[[Geometry], int] = contig.contig_alignment
    """The alignment (and length) of the model's ``alloc_contig_range`` ranges."""


def _drain_local_v5(s: System, t: Task) -> TaskGen:
    drain.drain_local_pages(s, t.cpu)
    return None
    yield


def _nothing(_s: Any, _cpu: int) -> None:
    return None


V5 = Kernel(
    boot=None,
    alloc_pages=pcp.alloc_pages,
    free_pages=pcp.__free_pages,
    free_unref_page_list=pcp.free_unref_page_list,
    drain_local_pages=_drain_local_v5,
    drain_all_pages=drain.drain_all_pages,
    pagelist_sysctl=pageset.percpu_pagelist_fraction_sysctl_handler,
    alloc_contig_range=contig.alloc_contig_range,
    offline_pages=hotplug.offline_pages,
    online_pages=hotplug.online_pages,
    get_hwpoison_page=contig.get_hwpoison_page,
    page_alloc_cpu_dead=drain.page_alloc_cpu_dead,
    page_alloc_cpu_online=_nothing,
    cpu_hotplug_allowed=lambda _s, _cpu: True,
    zone_high_batch=pageset.zone_high_batch,
)
V6_1 = Kernel(
    boot=pageset6.v61_boot,
    alloc_pages=page_alloc.alloc_pages,
    free_pages=page_alloc.__free_pages,
    free_unref_page_list=page_alloc.free_unref_page_list,
    drain_local_pages=drain6.drain_local_pages,
    drain_all_pages=drain6.drain_all_pages,
    pagelist_sysctl=pageset6.percpu_pagelist_high_fraction_sysctl_handler,
    alloc_contig_range=contig6.alloc_contig_range,
    offline_pages=memory_hotplug.offline_pages,
    online_pages=memory_hotplug.online_pages,
    get_hwpoison_page=contig6.get_hwpoison_page,
    page_alloc_cpu_dead=None,
    page_alloc_cpu_online=None,
    cpu_hotplug=cpuhp.cpu_hotplug,
    cpu_hotplug_allowed=cpuhp.cpu_hotplug_allowed,
    zone_high_batch=pageset6.zone_high_batch,
    contig_alignment=contig6.contig_alignment,
)


V6_12 = Kernel(
    boot=pageset612.v612_boot,
    alloc_pages=page_alloc612.alloc_pages,
    free_pages=page_alloc612.__free_pages,
    free_unref_page_list=page_alloc612.free_unref_folios,
    drain_local_pages=drain612.drain_local_pages,
    drain_all_pages=drain612.drain_all_pages,
    pagelist_sysctl=pageset612.percpu_pagelist_high_fraction_sysctl_handler,
    alloc_contig_range=contig612.alloc_contig_range,
    offline_pages=memory_hotplug612.offline_pages,
    online_pages=memory_hotplug612.online_pages,
    get_hwpoison_page=contig612.get_hwpoison_page,
    page_alloc_cpu_dead=None,
    page_alloc_cpu_online=None,
    cpu_hotplug=cpuhp612.cpu_hotplug,
    cpu_hotplug_allowed=cpuhp.cpu_hotplug_allowed,
    zone_high_batch=pageset612.zone_high_min_max_batch,
    vmstat_update=drain612.decay_pcp_high,
    contig_alignment=contig6.contig_alignment,
)


def kernel_for(profile: Profile) -> Kernel:
    """The kernel code ``profile`` runs."""
    if profile.freelist_hygiene:
        return V6_12
    return V6_1 if profile.pcp_spinlock else V5
