/* pcplists and memory offline, written from /work/shared/spec/kernel-semantics.md (sections 4,
 * 5, 7, 9, 10), for benchmarks/prove.py: 2 CPUs, one memory block of one 4-page pageblock, pcp
 * high 4 / batch 1. Each CPU starts, in any order: an order-0 MOVABLE allocation (ALLOCS in all, default 2),
 * a free of an allocated page, the one offline; drain work runs on each CPU.
 *   default        v5.9-nofix: isolation drains once, the retry loop does not
 *   -DPCP_DISABLE  v5.10+p7 / v5.11: zone_pcp_disable (high 0, forced drain) around isolation
 * Abstractions against pcpfuzz's model: no retry counter (the loop is a cycle), no buddy
 * orders or freelist order, one page at a time on a pcplist taken lowest first, allocated
 * pages never migrate (one block: there is no target). */
#ifndef ALLOCS
#define ALLOCS 2
#endif
#define NPAGES 4
#define FREE 0
#define ALLOC 1
#define INFLIGHT 2
#define PCP 3        /* PCP + cpu: on that CPU's pcplist */
#define GONE 5       /* offlined */
#define MOVABLE 1
#define ISOLATE 6

byte page[NPAGES];
byte cached[NPAGES];
byte pbmt = MOVABLE;
byte count[2];
byte high = 4;
byte batch = 1;
bool work[2];
bool iso_drained;    /* ISO-PCP armed: the range is isolated and was drained */
bool pcp_off;        /* PCP-OFF armed: pcplists disabled and drained */
byte allocs;
bool offline_started;

inline to_buddy(c, n) {   /* free_pcppages_bulk(n) / drain_local_pages: n pages to the buddy */
  k = 0;
  do
  :: k < NPAGES && n > 0 -> if :: page[k] == PCP + c -> page[k] = FREE; count[c]--; n-- :: else fi; k++
  :: else -> break
  od
}

inline alloc(c) {         /* rmqueue_pcplist, IRQs off: refill by rmqueue_bulk, take one */
  d_step {
    k = 0;
    if
    :: count[c] == 0 && pbmt != ISOLATE ->
       do
       :: k < NPAGES -> if :: page[k] == FREE && count[c] < batch -> page[k] = PCP + c; count[c]++ :: else fi; k++
       :: else -> break
       od
    :: else
    fi;
    k = 0;
    do
    :: k < NPAGES && page[k] == PCP + c -> page[k] = ALLOC; count[c]--; break
    :: k < NPAGES && page[k] != PCP + c -> k++
    :: else -> break
    od
  }
}

inline free(c) {          /* free_unref_page: prepare (lockless pageblock read), then commit */
  atomic {
    if
    :: page[0] == ALLOC -> p = 0
    :: page[1] == ALLOC -> p = 1
    :: page[2] == ALLOC -> p = 2
    :: page[3] == ALLOC -> p = 3
    fi;
    page[p] = INFLIGHT; cached[p] = pbmt
  };
  d_step {
    if
    :: cached[p] == ISOLATE -> page[p] = FREE
    :: else -> page[p] = PCP + c; count[c]++;
       if :: count[c] >= high -> n = batch; if :: n > count[c] -> n = count[c] :: else fi; to_buddy(c, n) :: else fi
    fi
  }
}

inline drain_all(forced) { /* __drain_all_pages: post work where needed, then flush_work */
  if :: forced || count[0] > 0 -> work[0] = true :: else fi;
  if :: forced || count[1] > 0 -> work[1] = true :: else fi;
  (!work[0] && !work[1])
}

inline offline() {
#ifdef PCP_DISABLE
  d_step { high = 0; batch = 1 };        /* zone_pcp_disable: pageset_update */
  drain_all(true);
  pcp_off = true;
#endif
  pbmt = ISOLATE;                       /* set_migratetype_isolate */
#ifndef PCP_DISABLE
  drain_all(false);
#endif
  iso_drained = true;
  do                                    /* test_pages_isolated until every page is free */
  :: atomic { page[0] == FREE && page[1] == FREE && page[2] == FREE && page[3] == FREE ->
       iso_drained = false; page[0] = GONE; page[1] = GONE; page[2] = GONE; page[3] = GONE };
     break
  :: else
  od;
#ifdef PCP_DISABLE
  atomic { pcp_off = false; high = 0 }  /* zone_pcp_enable; the zone is empty now */
#endif
}

proctype cpu(byte c) {
  byte k, n, p;
end:
  do
  :: atomic { allocs < ALLOCS -> allocs++ }; alloc(c)
  :: free(c)
  :: atomic { !offline_started -> offline_started = true }; offline()
  od
}

proctype drain_work(byte c) {
  byte k, n;
end:
  do
  :: d_step { work[c] -> n = NPAGES; to_buddy(c, n); work[c] = false }
  od
}

active proctype iso_pcp() { end: atomic { iso_drained && count[0] + count[1] > 0 -> assert(false) } }
active proctype pcp_off_check() { end: atomic { pcp_off && count[0] + count[1] > 0 -> assert(false) } }

init {
  atomic { run cpu(0); run cpu(1); run drain_work(0); run drain_work(1) }
}
