"""The guest side: the initramfs ``/init`` script (busybox ``sh``) and the scenario it runs.

The script reads its steps from ``xc.steps=`` on the kernel command line, takes a snapshot at boot
and after every step, and writes everything to the second serial port (``/dev/ttyS1``), so that
the data never mixes with printk output. Every line it writes starts with ``@@`` or is a line of
``/proc/zoneinfo`` cut to the fields the comparison reads.

Blocks are named by their place among the blocks that are offline at boot (the cold-plugged
pc-dimm's): ``d0`` is the lower one, ``d1`` the upper one.
"""

SCENARIO: tuple[str, ...] = (
    "online_movable:d0",
    "online_movable:d1",
    "watch_offline:d1",
    "offline:d0",
    "online_kernel:d1",
    "frac=8",
    "frac=7",
    "frac=8",
    "frac=0",
    "cpu1_off",
    "cpu1_on",
    "cpu1_off",
    "online_movable:d0",
    "frac=8",
    "cpu1_on",
    "frac=0",
)
"""Online both DIMM blocks as movable, offline the upper one while CPU 1 polls the Movable zone's
pagesets, offline the lower one (the Movable zone empties), online the upper one as kernel memory
(ZONE_NORMAL), write the fraction sysctl (valid, invalid, unchanged, back to 0), CPU 1 off and on;
then, with CPU 1 off, online the lower block as movable (a zone populated while a CPU is offline)
and set the fraction (split across one CPU), and bring CPU 1 back (every zone recomputed with the
``+ 1`` of the CPU-online callback, the new zone's pageset of CPU 1 listed) before the fraction
goes back to 0."""

WATCH_MARGIN_POLLS = 20
"""Polls the watcher takes before the offline write starts, and again after it returns."""

WATCH_FILL_MIB = 160
"""tmpfs data written before the watched offline. Movable allocations prefer ZONE_MOVABLE, so
part of it lands in the block being offlined, whose migration keeps ``offline_pages()`` (and the
window the poller must see) running long enough to be sampled many times."""

INIT_SCRIPT = r"""#!/bin/busybox sh
# pcpfuzz crosscheck guest /init: run the xc.steps= steps, snapshot after each, power off.
/bin/busybox mkdir -p /proc /sys /dev /tmp
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev 2>/dev/null
/bin/busybox --install -s /bin
export PATH=/bin
exec 3>/dev/ttyS1
M=/sys/devices/system/memory
ZONEINFO_LINES='^Node|^ +(pages free|boost|min|low|high|spanned|present|managed) '
ZONEINFO_LINES="$ZONEINFO_LINES|^ +(cpu|high|batch):"
WATCH_MARGIN=@WATCH_MARGIN@
WATCH_FILL=@WATCH_FILL@
if [ -e /proc/sys/vm/percpu_pagelist_high_fraction ]; then
    FRAC=percpu_pagelist_high_fraction
else
    FRAC=percpu_pagelist_fraction
fi
DIMM=""
for n in $(ls $M | sed -n 's/^memory\([0-9]*\)$/\1/p' | sort -n); do
    [ "$(cat $M/memory$n/state)" = offline ] && DIMM="$DIMM memory$n"
done
set -- $DIMM
D0=$1
D1=$2
STEPS=""
for w in $(cat /proc/cmdline); do
    case $w in xc.steps=*) STEPS=$(echo "${w#xc.steps=}" | tr , ' ') ;; esac
done

blk() { case $1 in d0) echo "$D0" ;; d1) echo "$D1" ;; esac; }

# write FILE VALUE: write, and report the outcome (rc, and the error text on failure).
write() {
    err=$( { echo "$2" >"$1"; } 2>&1 )
    echo "@@ WRITE $1 $2 rc=$? err=$err" >&3
}

snap() {
    {
        echo "@@ SNAP $1"
        echo "@@ UPTIME $(cut -d' ' -f1 /proc/uptime)"
        echo "@@ CPUS $(cat /sys/devices/system/cpu/online)"
        echo "@@ FRAC $(cat /proc/sys/vm/$FRAC)"
        echo "@@ MIN_FREE_KBYTES $(cat /proc/sys/vm/min_free_kbytes)"
        echo "@@ WATERMARK_SCALE_FACTOR $(cat /proc/sys/vm/watermark_scale_factor)"
        for b in $DIMM; do echo "@@ BLOCK $b $(cat $M/$b/state) $(cat $M/$b/valid_zones)"; done
        grep -E "$ZONEINFO_LINES" /proc/zoneinfo
        echo "@@ END"
    } >&3
}

# One line per read of the Movable zone's pagesets: "high/batch" per listed CPU, then ".".
poll() {
    while [ ! -e /tmp/stop ]; do
        awk '/^Node/ { z = ($4 == "Movable") }
             z && /^ +high:/ { h = $2 }
             z && /^ +batch:/ { printf "%s/%s ", h, $2 }
             END { print "." }' /proc/zoneinfo
    done >/tmp/poll
}

polls() { wc -l </tmp/poll; }
wait_polls() { while [ "$(polls)" -lt "$1" ]; do sleep 0.02; done; }

# watch_offline BLOCK: offline BLOCK on CPU 0 while CPU 1 polls; report the run lengths.
watch_offline() {
    rm -f /tmp/stop /tmp/poll
    touch /tmp/poll
    mkdir -p /fill
    mount -t tmpfs tmpfs /fill
    dd if=/dev/zero of=/fill/data bs=1048576 count=$WATCH_FILL 2>/dev/null
    poll &
    pid=$!
    taskset -p -c 1 $pid >/dev/null
    taskset -p -c 0 $$ >/dev/null
    wait_polls $WATCH_MARGIN
    before=$(polls)
    write $M/$1/state offline
    after=$(polls)
    wait_polls $((after + WATCH_MARGIN))
    touch /tmp/stop
    wait $pid
    umount /fill
    echo "@@ POLLS before=$before after=$after total=$(polls)" >&3
    uniq -c /tmp/poll | while read -r n rest; do echo "@@ WATCH $n $rest"; done >&3
}

step() {
    case $1 in
        online_movable:*) write $M/$(blk ${1#*:})/state online_movable ;;
        online_kernel:*) write $M/$(blk ${1#*:})/state online_kernel ;;
        offline:*) write $M/$(blk ${1#*:})/state offline ;;
        watch_offline:*) watch_offline $(blk ${1#*:}) ;;
        frac=*) write /proc/sys/vm/$FRAC ${1#frac=} ;;
        cpu1_off) write /sys/devices/system/cpu/cpu1/online 0 ;;
        cpu1_on) write /sys/devices/system/cpu/cpu1/online 1 ;;
        *) echo "@@ ERROR unknown step $1" >&3 ;;
    esac
}

{
    echo "@@ KERNEL $(uname -r)"
    echo "@@ BLOCK_PAGES $(( 0x$(cat $M/block_size_bytes) / 4096 ))"
    echo "@@ DIMM$DIMM"
    echo "@@ FRAC_SYSCTL $FRAC"
} >&3
snap boot
for s in $STEPS; do
    echo "@@ STEP $s" >&3
    step "$s"
    snap "$s"
done
echo "@@ DONE $(cut -d' ' -f1 /proc/uptime)" >&3
poweroff -f
""".replace("@WATCH_MARGIN@", str(WATCH_MARGIN_POLLS)).replace("@WATCH_FILL@", str(WATCH_FILL_MIB))
"""The guest's ``/init``."""
