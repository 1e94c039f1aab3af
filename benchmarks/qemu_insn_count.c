/*
 * A qemu TCG plugin that counts executed guest instructions, per vCPU (in qemu user mode: per
 * guest thread), and takes snapshots of the counts when the guest asks for one.
 *
 * Built and loaded by benchmarks/pi_instructions.py (gcc -shared -fPIC against qemu 7.2's
 * include/qemu/qemu-plugin.h, API version 1):
 *
 *     qemu-aarch64 -plugin file=qemu_insn_count.so,arg=out=COUNTS.txt ... python3.11 script.py
 *
 * Counting: when qemu translates a block, the plugin registers a callback on its execution that
 * adds the block's instruction count to the executing vCPU's counter (one cache line each, so
 * that guest threads do not share a line).  A block left early by an exception would be counted
 * whole; the guest scripts here take no faults in the measured loops.
 *
 * Marks: a guest syscall lseek(-1, MARK_MAGIC << 32 | code, SEEK_SET) (fails with EBADF in the
 * guest, nothing else happens) records a snapshot: the code and every vCPU's count so far.  The
 * guest brackets each measured frame with marks, so start-up, imports and JIT are outside.
 *
 * At exit it writes, atomically (OUT.part renamed to OUT):
 *     vcpus N                    vCPUs 0..N-1 counted instructions (guest threads that ran)
 *     mark CODE C0 C1 ... CN-1   one line per mark, the counts of vCPU 0..N-1 at that moment
 *     exit C0 C1 ... CN-1        the counts at exit
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <qemu-plugin.h>

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

#define MAX_VCPUS 256                       /* more threads than this: the run is refused */
#define LSEEK_AARCH64 62                    /* __NR_lseek in the aarch64 syscall table */
#define MARK_MAGIC 0x4d4d4d4dULL            /* "MMMM" in the offset's upper 32 bits */
#define MAX_MARKS 10000

typedef struct {
    uint64_t insns;
    char pad[64 - sizeof(uint64_t)];
} Counter;

static Counter counters[MAX_VCPUS];
static int too_many_vcpus;
static uint64_t *marks;                     /* MAX_MARKS rows of (code, count[0..MAX_VCPUS)) */
static unsigned int n_marks;
static int marks_overflow;
static const char *out_path;

static void on_block(unsigned int vcpu, void *n_insns)
{
    if (vcpu >= MAX_VCPUS) {
        too_many_vcpus = 1;
        return;
    }
    /* only this vCPU's thread writes its counter; marks read it with a relaxed load */
    uint64_t n = __atomic_load_n(&counters[vcpu].insns, __ATOMIC_RELAXED);
    __atomic_store_n(&counters[vcpu].insns, n + (uintptr_t)n_insns, __ATOMIC_RELAXED);
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    uintptr_t n_insns = qemu_plugin_tb_n_insns(tb);
    qemu_plugin_register_vcpu_tb_exec_cb(tb, on_block, QEMU_PLUGIN_CB_NO_REGS,
                                         (void *)n_insns);
}

static void on_syscall(qemu_plugin_id_t id, unsigned int vcpu, int64_t num, uint64_t a1,
                       uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6,
                       uint64_t a7, uint64_t a8)
{
    if (num != LSEEK_AARCH64 || (uint32_t)a1 != 0xffffffffu || (a2 >> 32) != MARK_MAGIC) {
        return;
    }
    unsigned int row = __atomic_fetch_add(&n_marks, 1, __ATOMIC_RELAXED);
    if (row >= MAX_MARKS) {
        marks_overflow = 1;
        return;
    }
    uint64_t *m = marks + (size_t)row * (MAX_VCPUS + 1);
    m[0] = a2 & 0xffffffffu;
    for (unsigned int i = 0; i < MAX_VCPUS; i++) {
        m[1 + i] = __atomic_load_n(&counters[i].insns, __ATOMIC_RELAXED);
    }
}

static void write_counts(FILE *f, const uint64_t *counts, unsigned int n)
{
    for (unsigned int i = 0; i < n; i++) {
        fprintf(f, " %" PRIu64, counts[i]);
    }
    fputc('\n', f);
}

static void write_at_exit(qemu_plugin_id_t id, void *userdata)
{
    unsigned int n = 1;                     /* vCPUs 0..n-1 ran (counted anything) */
    uint64_t now[MAX_VCPUS];
    char tmp[4096];

    if (too_many_vcpus || marks_overflow) {
        fprintf(stderr, "qemu_insn_count: %s; no counts written\n",
                too_many_vcpus ? "more than 256 vCPUs (guest threads)" : "more than 10000 marks");
        return;
    }
    for (unsigned int i = 0; i < MAX_VCPUS; i++) {
        now[i] = __atomic_load_n(&counters[i].insns, __ATOMIC_RELAXED);
        if (now[i]) {
            n = i + 1;
        }
    }
    snprintf(tmp, sizeof tmp, "%s.part", out_path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        perror(tmp);
        return;
    }
    fprintf(f, "vcpus %u\n", n);
    for (unsigned int r = 0; r < n_marks; r++) {
        const uint64_t *m = marks + (size_t)r * (MAX_VCPUS + 1);
        fprintf(f, "mark %" PRIu64, m[0]);
        write_counts(f, m + 1, n);
    }
    fprintf(f, "exit");
    write_counts(f, now, n);
    if (fclose(f) != 0 || rename(tmp, out_path) != 0) {
        perror(out_path);
    }
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
                                           int argc, char **argv)
{
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "out=", 4) == 0) {
            out_path = argv[i] + 4;
        } else {
            fprintf(stderr, "qemu_insn_count: unknown argument '%s' (only out=PATH)\n", argv[i]);
            return 1;
        }
    }
    if (!out_path || strlen(out_path) > 4000) {
        fprintf(stderr, "qemu_insn_count: give the output file: -plugin FILE,arg=out=PATH\n");
        return 1;
    }
    marks = calloc((size_t)MAX_MARKS * (MAX_VCPUS + 1), sizeof(uint64_t));
    if (!marks) {
        fprintf(stderr, "qemu_insn_count: out of memory\n");
        return 1;
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_vcpu_syscall_cb(id, on_syscall);
    qemu_plugin_register_atexit_cb(id, write_at_exit, NULL);
    return 0;
}
