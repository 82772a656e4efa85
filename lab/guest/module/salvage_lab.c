// SPDX-License-Identifier: GPL-2.0
/*
 * salvage_lab: crash triggers for salvage's QEMU lab.
 *
 * Writing to /proc/salvage_lab:
 *   "oops" - dereference a NULL pointer in salvage_lab_oops()
 *            (with panic_on_oops=1 this panics the kernel);
 *   "hang" - sleep uninterruptibly for ever in salvage_lab_hang(),
 *            which the hung-task detector reports (and, with
 *            hung_task_panic=1, panics on).
 * The functions are noinline so they appear in backtraces by name.
 */
#include <linux/module.h>
#include <linux/proc_fs.h>
#include <linux/sched.h>
#include <linux/string.h>
#include <linux/uaccess.h>

struct salvage_lab_victim {
	unsigned long magic;
	unsigned long value;
};

static noinline int salvage_lab_oops(struct salvage_lab_victim *v)
{
	pr_info("salvage_lab: dereferencing %px\n", v);
	return (int)READ_ONCE(v->value);
}

static noinline void salvage_lab_hang(void)
{
	pr_info("salvage_lab: %s (pid %d) now sleeps uninterruptibly\n",
		current->comm, task_pid_nr(current));
	for (;;)
		schedule_timeout_uninterruptible(MAX_SCHEDULE_TIMEOUT);
}

static ssize_t salvage_lab_write(struct file *file, const char __user *ubuf,
				 size_t len, loff_t *off)
{
	char cmd[16] = {};

	if (copy_from_user(cmd, ubuf, min(len, sizeof(cmd) - 1)))
		return -EFAULT;
	if (!strncmp(cmd, "oops", 4))
		return salvage_lab_oops(NULL);
	if (!strncmp(cmd, "hang", 4))
		salvage_lab_hang();
	return -EINVAL;
}

static const struct proc_ops salvage_lab_ops = {
	.proc_write = salvage_lab_write,
};

static int __init salvage_lab_init(void)
{
	if (!proc_create("salvage_lab", 0200, NULL, &salvage_lab_ops))
		return -ENOMEM;
	return 0;
}

static void __exit salvage_lab_exit(void)
{
	remove_proc_entry("salvage_lab", NULL);
}

module_init(salvage_lab_init);
module_exit(salvage_lab_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("crash triggers for salvage's QEMU lab");
