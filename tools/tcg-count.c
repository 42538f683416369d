// SPDX-License-Identifier: GPL-2.0
/*
 * tcg-count: a QEMU TCG plugin that counts the guest kernel's executed
 * instructions per translation block, for `tools/tcg-count report`.
 *
 * Under TCG, sampling profilers see translation-block starts and charge
 * time by when interrupts get through, not by what ran; this counts what
 * ran, exactly (but for races between vCPUs on a counter, which are rare
 * and lose, never invent, counts).
 *
 *   -plugin build/tcg-count.so,out=PREFIX,mark=0xADDR
 *
 * Every block that starts at a kernel address (the upper half) gets its own
 * counter, bumped inline on each execution; user-space blocks add their
 * instruction counts to a single counter. Each time the block at the kernel
 * address `mark` executes (a function the guest calls on purpose, e.g.
 * ksys_sync for sync(1)), the plugin writes a snapshot of all counters to
 * PREFIX.N (N = 1, 2, ...): lines "vaddr instructions executions", then
 * "user INSNS". The difference of two snapshots is what ran between them.
 *
 * Built against QEMU's plugin API version 1 (that of Debian 12's QEMU 7.2);
 * only the declarations it uses are repeated here, so no QEMU headers are
 * needed.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* QEMU's plugin API, version 1 (include/qemu/qemu-plugin.h). */
#define QEMU_PLUGIN_EXPORT __attribute__((visibility("default")))
typedef uint64_t qemu_plugin_id_t;
typedef struct {
	const char *target_name;
	struct { int min; int cur; } version;
	bool system_emulation;
	union { struct { int smp_vcpus; int max_vcpus; } system; };
} qemu_info_t;
struct qemu_plugin_tb;
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS };
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_tb_exec_cb(struct qemu_plugin_tb *tb, qemu_plugin_vcpu_udata_cb_t cb,
					  enum qemu_plugin_cb_flags flags, void *userdata);
void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *tb, enum qemu_plugin_op op,
					      void *ptr, uint64_t imm);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
uint64_t qemu_plugin_tb_vaddr(const struct qemu_plugin_tb *tb);
void qemu_plugin_outs(const char *string);

QEMU_PLUGIN_EXPORT int qemu_plugin_version = 1;

#define KERNEL_START 0xffff800000000000ull
#define CHUNK 65536

/* One translation of a kernel block; never moves (its counter is patched
 * into translated code). */
struct block {
	uint64_t vaddr;
	uint64_t insns;
	uint64_t execs;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct block **chunks;	/* CHUNK blocks each */
static size_t nchunks, nblocks;
static struct block **table;	/* open addressing on (vaddr, insns) */
static size_t table_size;
static uint64_t user_insns;
static uint64_t mark;
static const char *out;
static unsigned int snapshots;

static size_t slot(uint64_t vaddr, uint64_t insns, size_t size)
{
	uint64_t h = (vaddr ^ (insns << 48)) * 0x9e3779b97f4a7c15ull;

	return (size_t)(h >> 20) & (size - 1);
}

static bool grow(void)
{
	size_t size = table_size ? table_size * 2 : 1 << 18, i;
	struct block **t = calloc(size, sizeof(*t));

	if (!t)
		return false;
	for (i = 0; i < table_size; i++) {
		struct block *b = table[i];
		size_t j;

		if (!b)
			continue;
		for (j = slot(b->vaddr, b->insns, size); t[j]; j = (j + 1) & (size - 1))
			;
		t[j] = b;
	}
	free(table);
	table = t;
	table_size = size;
	return true;
}

/* The block for (vaddr, insns), found or made; NULL when out of memory. */
static struct block *lookup(uint64_t vaddr, uint64_t insns)
{
	struct block *b;
	size_t j;

	if ((nblocks + 1) * 2 > table_size && !grow())
		return NULL;
	for (j = slot(vaddr, insns, table_size); (b = table[j]); j = (j + 1) & (table_size - 1))
		if (b->vaddr == vaddr && b->insns == insns)
			return b;
	if (nblocks == nchunks * CHUNK) {
		struct block **c = realloc(chunks, (nchunks + 1) * sizeof(*c));

		if (!c)
			return NULL;
		chunks = c;
		chunks[nchunks] = calloc(CHUNK, sizeof(struct block));
		if (!chunks[nchunks])
			return NULL;
		nchunks++;
	}
	b = &chunks[nblocks / CHUNK][nblocks % CHUNK];
	nblocks++;
	b->vaddr = vaddr;
	b->insns = insns;
	table[j] = b;
	return b;
}

static void snapshot(unsigned int vcpu_index, void *userdata)
{
	char path[4096], msg[4200];
	size_t i;
	FILE *f;

	(void)vcpu_index;
	(void)userdata;
	pthread_mutex_lock(&lock);
	snprintf(path, sizeof(path), "%s.%u", out, ++snapshots);
	f = fopen(path, "w");
	if (f) {
		for (i = 0; i < nblocks; i++) {
			const struct block *b = &chunks[i / CHUNK][i % CHUNK];

			if (b->execs)
				fprintf(f, "%" PRIx64 " %" PRIu64 " %" PRIu64 "\n", b->vaddr, b->insns, b->execs);
		}
		fprintf(f, "user %" PRIu64 "\n", user_insns);
	}
	if (!f || fclose(f)) {
		snprintf(msg, sizeof(msg), "tcg-count: cannot write %s\n", path);
		qemu_plugin_outs(msg);
	}
	pthread_mutex_unlock(&lock);
}

static void translated(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
	uint64_t vaddr = qemu_plugin_tb_vaddr(tb), insns = qemu_plugin_tb_n_insns(tb);
	struct block *b;

	(void)id;
	if (vaddr < KERNEL_START) {
		qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &user_insns, insns);
		return;
	}
	if (vaddr == mark)
		qemu_plugin_register_vcpu_tb_exec_cb(tb, snapshot, QEMU_PLUGIN_CB_NO_REGS, NULL);
	pthread_mutex_lock(&lock);
	b = lookup(vaddr, insns);
	pthread_mutex_unlock(&lock);
	if (b)
		qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &b->execs, 1);
	else
		qemu_plugin_outs("tcg-count: out of memory, a block is not counted\n");
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc,
					   char **argv)
{
	int i;

	if (!info->system_emulation) {
		qemu_plugin_outs("tcg-count: system emulation only\n");
		return -1;
	}
	for (i = 0; i < argc; i++) {
		if (!strncmp(argv[i], "out=", 4))
			out = argv[i] + 4;
		else if (!strncmp(argv[i], "mark=", 5))
			mark = strtoull(argv[i] + 5, NULL, 0);
	}
	if (!out || !mark) {
		qemu_plugin_outs("tcg-count: usage: -plugin tcg-count.so,out=PREFIX,mark=0xADDR\n");
		return -1;
	}
	qemu_plugin_register_vcpu_tb_trans_cb(id, translated);
	return 0;
}
