# Sourced by the launchers that compute on this machine's CPU: glibc's malloc asks the kernel for
# transparent huge pages on large allocations (XLA's CPU buffers). Page faults on the LEAF frontend's
# full-rate buffers otherwise take a third of its time (docs/performance.md). Tunables already set are
# kept; glibc older than 2.35 ignores this one.
case ":${GLIBC_TUNABLES:-}:" in
  *:glibc.malloc.hugetlb=*) ;;
  *) export GLIBC_TUNABLES="${GLIBC_TUNABLES:+$GLIBC_TUNABLES:}glibc.malloc.hugetlb=1" ;;
esac
