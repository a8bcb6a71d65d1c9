"""The real-kernel cross-check: boot Debian's 5.10, 6.1 and 6.12 kernels under QEMU, run a
scripted memory- and CPU-hotplug scenario in a busybox initramfs, and compare what
``/proc/zoneinfo`` shows with the profiles' own watermark and sizing functions and the model's
``offline_pages`` runs.

Modules, one job each: ``tools`` finds QEMU, busybox and the images; ``guest`` holds the guest's
``/init`` script and the scenario; ``initramfs`` packs them; ``qemu`` boots one kernel;
``snapshot`` parses the guest's output; ``rules`` holds each kernel's pcp rules; ``model`` drives
the executable model through the same events; ``window`` fits the poller's readings to the
model's ``offline_pages`` run; ``compare`` makes the check lines; ``report`` prints them; ``cli``
is the ``pcpfuzz crosscheck`` command.
"""
