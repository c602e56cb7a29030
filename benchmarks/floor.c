/* The physical floor of a no-op run (issue 18): a minimal static process that makes the same
 * sequential requests a no-op `kscaler run` makes, and nothing else. Each argument is a file
 * holding one complete HTTP/1.1 request (already signed by bench.py, `Connection: close`);
 * for each, in order: connect to 127.0.0.1:PORT, write it, read the whole answer. Exits 0
 * when every answer began "HTTP/1.1 200" or "HTTP/1.0 200".
 *
 *   floor PORT REQUEST-FILE...     (built by bench.py: cc -O2 -static)
 */
#define _GNU_SOURCE /* strcasestr */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static char request[1 << 16];
static char answer[1 << 20];

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: floor PORT REQUEST-FILE...\n"); return 2; }
    struct sockaddr_in peer = { .sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[1])) };
    peer.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int i = 2; i < argc; i++) {
        int file = open(argv[i], O_RDONLY);
        ssize_t size = file < 0 ? -1 : read(file, request, sizeof request);
        if (file >= 0) close(file);
        if (size <= 0) { fprintf(stderr, "floor: cannot read %s\n", argv[i]); return 2; }
        int sock = socket(AF_INET, SOCK_STREAM, 0);
        int one = 1;
        setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (connect(sock, (struct sockaddr *)&peer, sizeof peer) != 0) { perror("floor: connect"); return 1; }
        for (ssize_t sent = 0; sent < size;) {
            ssize_t n = write(sock, request + sent, (size_t)(size - sent));
            if (n <= 0) { perror("floor: write"); return 1; }
            sent += n;
        }
        /* Read the head, then Content-Length bytes of body (or to EOF without one): a server
           that lingers before closing must not count as network time. */
        size_t got = 0, wanted = sizeof answer - 1;
        for (ssize_t n; got < wanted && (n = read(sock, answer + got, sizeof answer - got - 1)) > 0;) {
            got += (size_t)n;
            answer[got] = 0;
            char *end = strstr(answer, "\r\n\r\n");
            if (end && wanted == sizeof answer - 1) {
                char *length = strcasestr(answer, "\r\ncontent-length:");
                if (length && length < end) wanted = (size_t)(end + 4 - answer) + strtoul(length + 17, NULL, 10);
            }
        }
        close(sock);
        answer[got] = 0;
        if (strncmp(answer, "HTTP/1.1 200", 12) != 0 && strncmp(answer, "HTTP/1.0 200", 12) != 0) {
            fprintf(stderr, "floor: request %d answered: %.60s\n", i - 1, answer);
            return 1;
        }
    }
    return 0;
}
