// SPDX-License-Identifier: GPL-2.0
/*
 * Plays a VM fork for tests/dataplane.sh: does what drivers/virt/vmgenid.c
 * does when the hypervisor reports a new generation ID, which QEMU cannot
 * do for a running VM (its vmgenid "guid" is fixed once the device is
 * realized, and the 9p shares block snapshots). The vmfork notifiers run
 * before insmod returns. Loading then fails with EAGAIN, on purpose, so that
 * the module can be loaded again for the next fork.
 */
#include <linux/module.h>
#include <linux/random.h>

static int __init vmfork_trigger_init(void)
{
	u8 id[16];

	get_random_bytes(id, sizeof(id));
	add_vmfork_randomness(id, sizeof(id));
	return -EAGAIN;
}
module_init(vmfork_trigger_init);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Test helper: calls add_vmfork_randomness() as vmgenid does on a VM fork");
