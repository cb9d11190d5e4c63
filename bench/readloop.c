/*
 * readloop: the floor for reading a pcap file with libpcap.
 *
 * Opens each file with pcap_open_offline, calls pcap_next_ex until the end,
 * counts packets and captured/original bytes, and prints the totals, the
 * elapsed wall time and packets per second. Nothing is parsed: any analyzer
 * built on libpcap's savefile reader can at best approach this speed.
 *
 *   cc -O2 -o target/readloop bench/readloop.c -lpcap
 *   target/readloop FILE...
 *
 * Output (one line, key=value, easy to grep):
 *   packets=N caplen_bytes=N wire_bytes=N seconds=S pps=P
 */
#include <pcap/pcap.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    char errbuf[PCAP_ERRBUF_SIZE];
    uint64_t packets = 0, caplen_bytes = 0, wire_bytes = 0;
    unsigned sink = 0;

    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE...\n", argv[0]);
        return 2;
    }
    double start = now();
    for (int i = 1; i < argc; i++) {
        pcap_t *p = pcap_open_offline(argv[i], errbuf);
        if (p == NULL) {
            fprintf(stderr, "readloop: %s: %s\n", argv[i], errbuf);
            return 1;
        }
        struct pcap_pkthdr *hdr;
        const u_char *data;
        int rc;
        while ((rc = pcap_next_ex(p, &hdr, &data)) == 1) {
            packets++;
            caplen_bytes += hdr->caplen;
            wire_bytes += hdr->len;
            /* touch the frame so the loop can't be optimized into nothing */
            if (hdr->caplen > 12)
                sink += data[12];
        }
        if (rc == PCAP_ERROR) {
            fprintf(stderr, "readloop: %s: %s\n", argv[i], pcap_geterr(p));
            pcap_close(p);
            return 1;
        }
        pcap_close(p);
    }
    double secs = now() - start;
    printf("packets=%llu caplen_bytes=%llu wire_bytes=%llu seconds=%.3f pps=%.0f sink=%u\n",
           (unsigned long long)packets, (unsigned long long)caplen_bytes,
           (unsigned long long)wire_bytes, secs, secs > 0 ? packets / secs : 0.0, sink);
    return 0;
}
