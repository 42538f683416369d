// SPDX-License-Identifier: GPL-2.0
/*
 * The AEAD limit for tests/bench.sh: how fast the kernel's crypto library
 * (lib/crypto, which both WireGuard drivers use) seals buffers with
 * ChaCha20-Poly1305 on one CPU. At load it encrypts one buffer of `len`
 * bytes after another, each with the next nonce, for about `msecs`
 * milliseconds, timing only the encryptions themselves (in batches with
 * preemption off, so that the time of anything scheduled in between is not
 * counted), and prints
 *
 *   aead_bench: len=1420 buffers=N ns=T MB/s=X.Y buffers/s=Z cpu=C
 *
 * (MB = 10^6 bytes). Loading then fails with EAGAIN, on purpose, so that the
 * module can be loaded again: modprobe aead_bench len=64 msecs=500.
 */
#include <crypto/chacha20poly1305.h>
#include <linux/ktime.h>
#include <linux/math64.h>
#include <linux/module.h>
#include <linux/random.h>
#include <linux/sched.h>
#include <linux/slab.h>

static unsigned int len = 1420;
module_param(len, uint, 0444);
MODULE_PARM_DESC(len, "bytes of plaintext per buffer (default 1420, WireGuard's MTU)");

static unsigned int msecs = 1000;
module_param(msecs, uint, 0444);
MODULE_PARM_DESC(msecs, "milliseconds of encryption to time (default 1000)");

/* Buffers per preemption-off stretch: some 0.5 ms at 1420 bytes under TCG. */
#define BATCH 16

static int __init aead_bench_init(void)
{
	u8 key[CHACHA20POLY1305_KEY_SIZE];
	u64 budget = (u64)msecs * NSEC_PER_MSEC, ns = 0, n = 0, nonce = 0;
	u64 mbps10, rate;
	u8 *src, *dst;
	int cpu = -1;

	if (len < 1 || len > 65536 || msecs < 1 || msecs > 60000)
		return -EINVAL;
	src = kmalloc(len, GFP_KERNEL);
	dst = kmalloc(len + CHACHA20POLY1305_AUTHTAG_SIZE, GFP_KERNEL);
	if (!src || !dst) {
		kfree(src);
		kfree(dst);
		return -ENOMEM;
	}
	get_random_bytes(key, sizeof(key));
	get_random_bytes(src, len);

	/* One untimed round: caches, and the SIMD code's first use. */
	chacha20poly1305_encrypt(dst, src, len, NULL, 0, nonce++, key);
	while (ns < budget) {
		u64 t0;
		int i;

		preempt_disable();
		cpu = smp_processor_id();
		t0 = ktime_get_ns();
		for (i = 0; i < BATCH; i++)
			chacha20poly1305_encrypt(dst, src, len, NULL, 0, nonce++, key);
		ns += ktime_get_ns() - t0;
		preempt_enable();
		n += BATCH;
		cond_resched();
	}
	/* bytes/ns * 1000 = MB/s; in tenths. */
	mbps10 = div64_u64(n * len * 10000, ns);
	rate = div64_u64(n * NSEC_PER_SEC, ns);
	pr_info("aead_bench: len=%u buffers=%llu ns=%llu MB/s=%llu.%llu buffers/s=%llu cpu=%d\n",
		len, n, ns, mbps10 / 10, mbps10 % 10, rate, cpu);

	memzero_explicit(key, sizeof(key));
	kfree(src);
	kfree(dst);
	return -EAGAIN;
}
module_init(aead_bench_init);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Test helper: times ChaCha20-Poly1305 (lib/crypto) on one CPU, for tests/bench.sh");
