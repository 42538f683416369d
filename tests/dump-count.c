// SPDX-License-Identifier: GPL-2.0
/*
 * dump-count: times WG_CMD_GET_DEVICE dumps of one device with a client
 * that only receives and counts the messages, so that neither wg's
 * formatting nor an interpreter hides the kernel's cost (bench-scale.sh).
 *
 *   dump-count [-n N] [-s] IFNAME
 *
 * Runs N dumps (default 1), each printed as one line
 * "messages=M bytes=B seconds=S": the dump's messages, their payload bytes
 * after the generic netlink header, and the time from the request to
 * NLMSG_DONE; a dump flagged NLM_F_DUMP_INTR is followed by a line
 * "DUMP_INTR". Reads are 1 MiB, which caps each message at the kernel's
 * limit (32 KiB), as for `tests/genl.py get --count`; the buffer is touched
 * before the first dump, so that no page fault lands in the timing.
 *
 * With -s, sync(2) runs before the first dump and after the last, each
 * followed by a line "sync S" (the monotonic clock, in seconds): the
 * snapshots of tools/tcg-count's counters, with the client's start-up
 * outside the window.
 *
 * Exit status: 0 on success, 1 when the kernel answered with an error (its
 * errno name on stdout), 2 on usage or local errors.
 */
#define _GNU_SOURCE /* strerrorname_np */
#include <errno.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <linux/wireguard.h>
#include <net/if.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define READ_SIZE (1 << 20)

static char *buf;
static uint32_t seq;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void put_attr(char *msg, uint16_t type, const void *data, uint16_t len)
{
	struct nlmsghdr *nlh = (struct nlmsghdr *)msg;
	struct nlattr *nla = (struct nlattr *)(msg + NLMSG_ALIGN(nlh->nlmsg_len));

	nla->nla_type = type;
	nla->nla_len = NLA_HDRLEN + len;
	memcpy((char *)nla + NLA_HDRLEN, data, len);
	nlh->nlmsg_len = NLMSG_ALIGN(nlh->nlmsg_len) + NLA_ALIGN(nla->nla_len);
}

/* Sends a request of family FAMILY and command CMD with one attribute. */
static int request(int fd, uint16_t family, uint8_t cmd, uint16_t flags,
		   uint16_t attr, const void *data, uint16_t len)
{
	char msg[256] = {};
	struct nlmsghdr *nlh = (struct nlmsghdr *)msg;
	struct genlmsghdr *genl = NLMSG_DATA(nlh);

	nlh->nlmsg_len = NLMSG_LENGTH(GENL_HDRLEN);
	nlh->nlmsg_type = family;
	nlh->nlmsg_flags = NLM_F_REQUEST | flags;
	nlh->nlmsg_seq = ++seq;
	genl->cmd = cmd;
	genl->version = 1;
	put_attr(msg, attr, data, len);
	return send(fd, msg, nlh->nlmsg_len, 0) == (ssize_t)nlh->nlmsg_len ? 0 : -1;
}

struct tally {
	unsigned long messages, bytes;
	int intr;
	uint16_t family; /* from CTRL_CMD_GETFAMILY */
};

static int fail_errno(int err)
{
	const char *name = strerrorname_np(err);

	printf("%s\n", name ? name : "EUNKNOWN");
	return 1;
}

/*
 * Reads the answers to the last request until its NLMSG_DONE, or its one
 * reply if it was no dump. Returns 0, an exit status otherwise.
 */
static int receive(int fd, int dump, struct tally *t)
{
	for (;;) {
		ssize_t n = recv(fd, buf, READ_SIZE, 0);
		struct nlmsghdr *nlh;

		if (n < 0) {
			perror("dump-count: recv");
			return 2;
		}
		for (nlh = (struct nlmsghdr *)buf; NLMSG_OK(nlh, n); nlh = NLMSG_NEXT(nlh, n)) {
			if (nlh->nlmsg_seq != seq)
				continue;
			if (nlh->nlmsg_flags & NLM_F_DUMP_INTR)
				t->intr = 1;
			if (nlh->nlmsg_type == NLMSG_ERROR || nlh->nlmsg_type == NLMSG_DONE) {
				int err = nlh->nlmsg_len >= NLMSG_LENGTH(sizeof(int)) ?
						  *(int *)NLMSG_DATA(nlh) : 0;

				return err ? fail_errno(-err) : 0;
			}
			if (nlh->nlmsg_len < NLMSG_LENGTH(GENL_HDRLEN))
				continue;
			t->messages++;
			t->bytes += nlh->nlmsg_len - NLMSG_LENGTH(GENL_HDRLEN);
			if (!dump) {
				/* The family's id, from CTRL_ATTR_FAMILY_ID. */
				struct nlattr *nla = (struct nlattr *)((char *)NLMSG_DATA(nlh) + GENL_HDRLEN);
				int left = nlh->nlmsg_len - NLMSG_LENGTH(GENL_HDRLEN);

				while (left >= NLA_HDRLEN && nla->nla_len >= NLA_HDRLEN && nla->nla_len <= left) {
					if ((nla->nla_type & NLA_TYPE_MASK) == CTRL_ATTR_FAMILY_ID &&
					    nla->nla_len >= NLA_HDRLEN + 2)
						memcpy(&t->family, (char *)nla + NLA_HDRLEN, 2);
					left -= NLA_ALIGN(nla->nla_len);
					nla = (struct nlattr *)((char *)nla + NLA_ALIGN(nla->nla_len));
				}
				return 0;
			}
		}
	}
}

static void mark(void)
{
	sync();
	printf("sync %.6f\n", now());
}

int main(int argc, char **argv)
{
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	struct tally family = {};
	int opt, dumps = 1, snapshots = 0, fd, status = 0;
	const char *ifname;

	while ((opt = getopt(argc, argv, "n:s")) != -1) {
		switch (opt) {
		case 'n':
			dumps = atoi(optarg);
			break;
		case 's':
			snapshots = 1;
			break;
		default:
			goto usage;
		}
	}
	if (optind != argc - 1 || dumps < 1 || strlen(argv[optind]) >= IFNAMSIZ)
		goto usage;
	ifname = argv[optind];

	buf = malloc(READ_SIZE);
	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);
	if (!buf || fd < 0 || connect(fd, (struct sockaddr *)&kernel, sizeof(kernel))) {
		perror("dump-count");
		return 2;
	}
	memset(buf, 0, READ_SIZE);
	if (request(fd, GENL_ID_CTRL, CTRL_CMD_GETFAMILY, 0, CTRL_ATTR_FAMILY_NAME,
		    WG_GENL_NAME, sizeof(WG_GENL_NAME))) {
		perror("dump-count: send");
		return 2;
	}
	status = receive(fd, 0, &family);
	if (status)
		return status;
	if (!family.family) {
		fprintf(stderr, "dump-count: no family id for " WG_GENL_NAME "\n");
		return 2;
	}

	if (snapshots)
		mark();
	for (int i = 0; i < dumps && !status; i++) {
		struct tally t = {};
		double started = now();

		if (request(fd, family.family, WG_CMD_GET_DEVICE, NLM_F_ACK | NLM_F_DUMP,
			    WGDEVICE_A_IFNAME, ifname, strlen(ifname) + 1)) {
			perror("dump-count: send");
			return 2;
		}
		status = receive(fd, 1, &t);
		if (status)
			break;
		printf("messages=%lu bytes=%lu seconds=%.6f\n", t.messages, t.bytes, now() - started);
		if (t.intr)
			printf("DUMP_INTR\n");
	}
	if (snapshots && !status)
		mark();
	return status;

usage:
	fprintf(stderr, "usage: dump-count [-n N] [-s] IFNAME\n");
	return 2;
}
