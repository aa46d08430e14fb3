// SPDX-License-Identifier: MIT
// strace comparison corpus, networking: socket, bind, listen, connect, accept, accept4, sendto,
// recvfrom, sendmsg, recvmsg (with control messages), sendmmsg, recvmmsg, setsockopt,
// getsockopt with AF_UNIX (path and abstract), AF_INET and AF_INET6
// on the loopback interface
// (the test brings lo up first; without it the inet parts fail, which is traced all the same).
// One process: a stream connect completes through the listen backlog before accept.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <linux/netlink.h>
#include <stddef.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

static void unix_stream(void) {
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    strcpy(a.sun_path, "/tmp/corpus_net.sock");
    socklen_t alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(a.sun_path) + 1);
    int s = (int)syscall(SYS_socket, AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    syscall(SYS_bind, s, &a, alen);
    syscall(SYS_listen, s, 4);
    int c = (int)syscall(SYS_socket, AF_UNIX, SOCK_STREAM, 0);
    syscall(SYS_connect, c, &a, alen);
    struct sockaddr_un peer;
    socklen_t plen = sizeof peer;
    int a1 = (int)syscall(SYS_accept, s, &peer, &plen);
    syscall(SYS_sendto, c, "ping\n", 5, 0, NULL, 0);
    char buf[64];
    syscall(SYS_recvfrom, a1, buf, sizeof buf, 0, NULL, NULL);
    int c2 = (int)syscall(SYS_socket, AF_UNIX, SOCK_STREAM, 0);
    syscall(SYS_connect, c2, &a, alen);
    plen = sizeof peer;
    int a2 = (int)syscall(SYS_accept4, s, &peer, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
    syscall(SYS_recvfrom, a2, buf, sizeof buf, MSG_DONTWAIT, NULL, NULL); /* EAGAIN */
    syscall(SYS_close, a2);
    syscall(SYS_close, c2);
    syscall(SYS_close, a1);
    syscall(SYS_close, c);
    syscall(SYS_close, s);
    syscall(SYS_unlink, a.sun_path);
}

static void unix_dgram_abstract(void) {
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    memcpy(a.sun_path, "\0corpus", 7);
    socklen_t alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 7);
    int s = (int)syscall(SYS_socket, AF_UNIX, SOCK_DGRAM, 0);
    syscall(SYS_bind, s, &a, alen);
    int c = (int)syscall(SYS_socket, AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    syscall(SYS_sendto, c, "datagram", 8, MSG_DONTWAIT, &a, alen);
    char buf[64];
    struct sockaddr_un from;
    socklen_t flen = sizeof from;
    syscall(SYS_recvfrom, s, buf, sizeof buf, 0, &from, &flen);

    // sendmsg/recvmsg: two buffers out, a short and a long one in, the sender's address.
    struct iovec out[2] = {{(void*)"hello ", 6}, {(void*)"msg\n", 4}};
    struct msghdr m;
    memset(&m, 0, sizeof m);
    m.msg_name = &a;
    m.msg_namelen = alen;
    m.msg_iov = out;
    m.msg_iovlen = 2;
    syscall(SYS_sendmsg, c, &m, 0);
    char small[4];
    struct iovec in[2] = {{small, sizeof small}, {buf, sizeof buf}};
    struct msghdr r;
    memset(&r, 0, sizeof r);
    r.msg_name = &from;
    r.msg_namelen = sizeof from;
    r.msg_iov = in;
    r.msg_iovlen = 2;
    syscall(SYS_recvmsg, s, &r, 0);
    syscall(SYS_sendmsg, c, &m, MSG_DONTWAIT);
    r.msg_iovlen = 1; /* 4 bytes of 10: MSG_TRUNC */
    r.msg_namelen = sizeof from;
    syscall(SYS_recvmsg, s, &r, MSG_DONTWAIT);
    syscall(SYS_recvmsg, s, &r, MSG_DONTWAIT); /* EAGAIN */
    syscall(SYS_sendmsg, c, NULL, 0);          /* EFAULT */
    syscall(SYS_close, c);
    syscall(SYS_close, s);
}

/* Control messages over a socketpair: a descriptor passed with SCM_RIGHTS (the receiver gets
   one of its own) and the sender's credentials with SCM_CREDENTIALS (the receiver, without
   SO_PASSCRED, is not given them). */
static void unix_control(void) {
    int sv[2];
    syscall(SYS_socketpair, AF_UNIX, SOCK_DGRAM, 0, sv);
    union {
        char buf[CMSG_SPACE(sizeof(int)) + CMSG_SPACE(sizeof(struct ucred))];
        struct cmsghdr align;
    } out, in;
    memset(&out, 0, sizeof out);
    struct iovec io = {(void*)"fd", 2};
    struct msghdr m;
    memset(&m, 0, sizeof m);
    m.msg_iov = &io;
    m.msg_iovlen = 1;
    m.msg_control = out.buf;
    m.msg_controllen = sizeof out.buf;
    struct cmsghdr* c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    int fd = 1;
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
    c = CMSG_NXTHDR(&m, c);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_CREDENTIALS;
    c->cmsg_len = CMSG_LEN(sizeof(struct ucred));
    struct ucred cred = {(pid_t)syscall(SYS_getpid), 0, 0};
    memcpy(CMSG_DATA(c), &cred, sizeof cred);
    syscall(SYS_sendmsg, sv[0], &m, 0);
    char got[8];
    struct iovec ii = {got, sizeof got};
    struct msghdr r;
    memset(&r, 0, sizeof r);
    memset(&in, 0, sizeof in);
    r.msg_iov = &ii;
    r.msg_iovlen = 1;
    r.msg_control = in.buf;
    r.msg_controllen = sizeof in.buf;
    syscall(SYS_recvmsg, sv[1], &r, 0);
    for (c = CMSG_FIRSTHDR(&r); c; c = CMSG_NXTHDR(&r, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            memcpy(&fd, CMSG_DATA(c), sizeof fd);
            syscall(SYS_close, fd);
        }
    }
    syscall(SYS_close, sv[0]);
    syscall(SYS_close, sv[1]);
}

static void inet(void) {
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons(4242);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int s = (int)syscall(SYS_socket, AF_INET, SOCK_STREAM, IPPROTO_TCP);
    /* Socket options: ints, a struct linger, a value read back, an unknown option. */
    int on = 1, val = 0;
    socklen_t vlen = sizeof val;
    syscall(SYS_setsockopt, s, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    syscall(SYS_getsockopt, s, SOL_SOCKET, SO_REUSEADDR, &val, &vlen);
    vlen = sizeof val;
    syscall(SYS_getsockopt, s, SOL_SOCKET, 9999, &val, &vlen); /* ENOPROTOOPT */
    syscall(SYS_bind, s, &a, sizeof a);
    syscall(SYS_listen, s, 1);
    int c = (int)syscall(SYS_socket, AF_INET, SOCK_STREAM, 0);
    syscall(SYS_setsockopt, c, SOL_TCP, TCP_NODELAY, &on, sizeof on);
    struct linger lg = {1, 0};
    syscall(SYS_setsockopt, c, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    syscall(SYS_connect, c, &a, sizeof a);
    struct sockaddr_in peer;
    socklen_t plen = sizeof peer;
    int a1 = (int)syscall(SYS_accept, s, &peer, &plen);
    syscall(SYS_sendto, a1, "hello over tcp", 14, MSG_NOSIGNAL, NULL, 0);
    char buf[64];
    syscall(SYS_recvfrom, c, buf, sizeof buf, 0, NULL, NULL);
    syscall(SYS_close, a1);
    syscall(SYS_close, c);
    syscall(SYS_close, s);

    int u = (int)syscall(SYS_socket, AF_INET, SOCK_DGRAM, IPPROTO_UDP);
    a.sin_port = htons(5353);
    syscall(SYS_bind, u, &a, sizeof a);
    syscall(SYS_sendto, u, "udp4", 4, 0, &a, sizeof a);
    struct sockaddr_in from;
    socklen_t flen = sizeof from;
    syscall(SYS_recvfrom, u, buf, sizeof buf, 0, &from, &flen);
    struct iovec one = {(void*)"udp4 msg", 8};
    struct msghdr m;
    memset(&m, 0, sizeof m);
    m.msg_name = &a;
    m.msg_namelen = sizeof a;
    m.msg_iov = &one;
    m.msg_iovlen = 1;
    syscall(SYS_sendmsg, u, &m, 0);
    struct iovec back = {buf, sizeof buf};
    struct msghdr r;
    memset(&r, 0, sizeof r);
    r.msg_name = &from;
    r.msg_namelen = sizeof from + 4;
    r.msg_iov = &back;
    r.msg_iovlen = 1;
    syscall(SYS_recvmsg, u, &r, 0);
    /* Two datagrams in one call, as glibc's resolver sends its A and AAAA queries. */
    struct iovec q1 = {(void*)"query A", 7}, q2 = {(void*)"query AAAA", 10};
    struct mmsghdr mm[2];
    memset(mm, 0, sizeof mm);
    mm[0].msg_hdr.msg_name = &a;
    mm[0].msg_hdr.msg_namelen = sizeof a;
    mm[0].msg_hdr.msg_iov = &q1;
    mm[0].msg_hdr.msg_iovlen = 1;
    mm[1].msg_hdr.msg_name = &a;
    mm[1].msg_hdr.msg_namelen = sizeof a;
    mm[1].msg_hdr.msg_iov = &q2;
    mm[1].msg_hdr.msg_iovlen = 1;
    syscall(SYS_sendmmsg, u, mm, 2, MSG_NOSIGNAL);
    /* Both back in one call: room for three, the senders' addresses (20 bytes of room, 16
       used), then none left (EAGAIN). */
    char b1[16], b2[16], b3[16];
    struct iovec r1 = {b1, sizeof b1}, r2 = {b2, sizeof b2}, r3 = {b3, sizeof b3};
    struct sockaddr_in f1[2], f2[2];
    struct mmsghdr rm[3];
    memset(rm, 0, sizeof rm);
    rm[0].msg_hdr.msg_name = f1;
    rm[0].msg_hdr.msg_namelen = sizeof f1[0] + 4;
    rm[0].msg_hdr.msg_iov = &r1;
    rm[0].msg_hdr.msg_iovlen = 1;
    rm[1].msg_hdr.msg_name = f2;
    rm[1].msg_hdr.msg_namelen = sizeof f2[0] + 4;
    rm[1].msg_hdr.msg_iov = &r2;
    rm[1].msg_hdr.msg_iovlen = 1;
    rm[2].msg_hdr.msg_iov = &r3;
    rm[2].msg_hdr.msg_iovlen = 1;
    syscall(SYS_recvmmsg, u, rm, 3, MSG_WAITFORONE, NULL);
    syscall(SYS_recvmmsg, u, rm, 3, MSG_DONTWAIT, NULL); /* EAGAIN */
    syscall(SYS_close, u);
    a.sin_addr.s_addr = htonl(0xc0000201); /* 192.0.2.1: no route without a network */
    int d = (int)syscall(SYS_socket, AF_INET, SOCK_DGRAM, 0);
    syscall(SYS_connect, d, &a, sizeof a);
    syscall(SYS_close, d);
}

static void inet6(void) {
    struct sockaddr_in6 a;
    memset(&a, 0, sizeof a);
    a.sin6_family = AF_INET6;
    a.sin6_port = htons(6000);
    a.sin6_addr = in6addr_loopback;
    int u = (int)syscall(SYS_socket, AF_INET6, SOCK_DGRAM, 0);
    int one = 1;
    syscall(SYS_setsockopt, u, SOL_IPV6, IPV6_V6ONLY, &one, sizeof one);
    syscall(SYS_bind, u, &a, sizeof a);
    syscall(SYS_sendto, u, "udp6", 4, 0, &a, sizeof a);
    char buf[64];
    struct sockaddr_in6 from;
    socklen_t flen = sizeof from;
    syscall(SYS_recvfrom, u, buf, sizeof buf, 0, &from, &flen);
    syscall(SYS_close, u);
}

/* The loopback interface through struct ifreq, as ifconfig asks: index, name, flags, MTU,
 * hardware address; and an interface that does not exist (ENODEV: the name alone). */
static void interfaces(void) {
    int fd = (int)syscall(SYS_socket, AF_INET, SOCK_DGRAM, 0);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strcpy(ifr.ifr_name, "lo");
    syscall(SYS_ioctl, fd, SIOCGIFINDEX, &ifr);
    int index = ifr.ifr_ifindex;
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_ifindex = index;
    syscall(SYS_ioctl, fd, SIOCGIFNAME, &ifr);
    syscall(SYS_ioctl, fd, SIOCGIFFLAGS, &ifr);
    syscall(SYS_ioctl, fd, SIOCGIFMTU, &ifr);
    syscall(SYS_ioctl, fd, SIOCGIFHWADDR, &ifr);
    syscall(SYS_ioctl, fd, SIOCGIFTXQLEN, &ifr);
    memset(&ifr, 0, sizeof ifr);
    strcpy(ifr.ifr_name, "nosuch0");
    syscall(SYS_ioctl, fd, SIOCGIFMTU, &ifr);
    /* The list of interfaces with an address (lo's, set here): its size without a buffer, then
     * in a buffer with room for more. */
    memset(&ifr, 0, sizeof ifr);
    strcpy(ifr.ifr_name, "lo");
    struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    syscall(SYS_ioctl, fd, SIOCSIFADDR, &ifr);
    struct ifconf ifc = {.ifc_len = 0, .ifc_buf = NULL};
    syscall(SYS_ioctl, fd, SIOCGIFCONF, &ifc);
    struct ifreq list[3];
    ifc.ifc_len = sizeof list;
    ifc.ifc_req = list;
    syscall(SYS_ioctl, fd, SIOCGIFCONF, &ifc);
    syscall(SYS_close, fd);
}

int main(void) {
    unix_stream();
    unix_dgram_abstract();
    unix_control();
    inet();
    inet6();
    syscall(SYS_socket, 12345, SOCK_STREAM, 0); /* EAFNOSUPPORT */
    /* Netlink, as ip and ifconfig use it: the protocol by name, the kernel's address. */
    int nl = (int)syscall(SYS_socket, AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    struct sockaddr_nl kernel_nl = {.nl_family = AF_NETLINK, .nl_pid = 0, .nl_groups = 0x11};
    syscall(SYS_bind, nl, &kernel_nl, sizeof kernel_nl);
    syscall(SYS_close, nl);
    syscall(SYS_socket, AF_NETLINK, SOCK_RAW, 99); /* EPROTONOSUPPORT */
    interfaces();
    syscall(SYS_write, 1, "corpus_net: done\n", 17);
    return 0;
}
