// Test-only CUDA emulator runtime: runs a kernel's blocks one after another, each GPU thread as a fiber,
// with strict barriers and warp exchanges, guarded allocations and one-line errors for the Java tests.
//
// Why: no GPU is needed to check the kernels' index arithmetic, the launchers' grid sizes and the
// argument packing; what it cannot check is timing, the memory model and real intrinsics precision.
#include "cuda_emu.h"

#include <ffi.h>
#include <sys/mman.h>
#include <ucontext.h>

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace cria_emu {

uint3e g_block_idx;
uint3e g_block_dim;
uint3e g_grid_dim;
static uint3e g_main_idx;
uint3e* g_thread_idx = &g_main_idx;

namespace {

constexpr size_t kStack = 256 * 1024;
constexpr size_t kGuard = 256;            // bytes of 0xFF before and after every allocation
constexpr unsigned char kGuardByte = 0xFF;  // reads past an end give NaN (f32 and f16) or -1
constexpr unsigned kMaxDynamicShared = 101376; // 99 KiB: the opt-in limit of sm_86 and sm_89 (sm_80 163, sm_90 227)

enum class State { Ready, Running, WaitBlock, WaitWarp, Done };

// Context switching. On x86-64 a hand-written switch (callee-saved registers, the stack pointer
// and the FP control words): glibc's swapcontext makes a system call per switch, which made the
// emulator ten times slower. Elsewhere ucontext.
#if defined(__x86_64__)
#define CRIA_EMU_ASM_SWITCH 1
extern "C" void cria_emu_switch(void** save_sp, void* next_sp);
asm(R"(
.text
.globl cria_emu_switch
.type cria_emu_switch,@function
cria_emu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
.size cria_emu_switch, .-cria_emu_switch
)");
struct Context {
    void* sp = nullptr;
};
#else
struct Context {
    ucontext_t uc;
};
#endif

struct Fiber {
    Context ctx;
    uint3e tid;
    int linear = 0;
    int warp = 0;
    int lane = 0;
    State state = State::Ready;
    unsigned wait_gen = 0;  // the barrier generation a waiting fiber waits to see change
};

struct Warp {
    unsigned gen = 0;
    unsigned arrived = 0;
    unsigned size = 0;
    unsigned alive = 0;
    uint64_t slot[32];
    int pred[32];
};

struct Alloc {
    size_t bytes;
};

std::mutex g_lock;
std::string g_error;
bool g_failed = false;
bool g_progress = false;
int g_mode = 0;             // 0 forward, 1 reverse, 2 random order with random delays
uint64_t g_rng = 0x9e3779b97f4a7c15ull;

uint64_t next_random() {  // xorshift64*
    g_rng ^= g_rng >> 12;
    g_rng ^= g_rng << 25;
    g_rng ^= g_rng >> 27;
    return g_rng * 0x2545f4914f6cdd1dull;
}
const char* g_kernel = "";

Context g_main;

void switch_to(Context* save, Context* next) {
#ifdef CRIA_EMU_ASM_SWITCH
    cria_emu_switch(&save->sp, next->sp);
#else
    swapcontext(&save->uc, &next->uc);
#endif
}
std::vector<Fiber> g_fibers;
std::vector<char*> g_stacks;
Fiber* g_cur = nullptr;
std::vector<Warp> g_warps;
unsigned g_threads = 0;
unsigned g_alive = 0;
unsigned g_bar_gen = 0;
unsigned g_bar_arrived = 0;
int g_bar_acc = 0;
int g_bar_result = 0;
std::vector<unsigned char> g_dyn_shared;

std::map<uintptr_t, Alloc> g_allocs;  // user address -> size

ffi_cif g_cif;
void* g_fn = nullptr;
std::vector<void*> g_values;

void yield() {
    switch_to(&g_cur->ctx, &g_main);
}

std::string where() {
    char buf[160];
    if (g_cur == nullptr) {
        return "host";
    }
    snprintf(buf, sizeof buf, "thread (%u,%u,%u) of block (%u,%u,%u)", g_cur->tid.x, g_cur->tid.y, g_cur->tid.z,
             g_block_idx.x, g_block_idx.y, g_block_idx.z);
    return buf;
}

void fiber_main() {
    Fiber& f = *g_cur;
    f.state = State::Running;
    g_progress = true;
    ffi_arg ret;
    ffi_call(&g_cif, FFI_FN(g_fn), &ret, g_values.data());
    async_thread_exit(f.linear);
    f.state = State::Done;
    g_progress = true;
    g_alive--;
    g_warps[(size_t) f.warp].alive--;
    if (g_bar_arrived > 0) {
        fail("thread (%u,%u,%u) returned while other threads of its block wait at __syncthreads",
             f.tid.x, f.tid.y, f.tid.z);
    }
    if (g_warps[(size_t) f.warp].arrived > 0) {
        fail("thread (%u,%u,%u) returned while other lanes of its warp wait in a shuffle or __syncwarp",
             f.tid.x, f.tid.y, f.tid.z);
    }
    switch_to(&f.ctx, &g_main);  // never resumed
    abort();
}

/** Prepares a fiber to start in fiber_main on the given stack. */
void init_context(Fiber& f, char* stack_base) {
#ifdef CRIA_EMU_ASM_SWITCH
    // Lay out what cria_emu_switch pops: FP control words, six registers, then a return address
    // into fiber_main, placed so that fiber_main starts with the stack aligned as a call leaves it.
    uintptr_t top = ((uintptr_t) (stack_base + kStack)) & ~(uintptr_t) 15;
    void** sp = reinterpret_cast<void**>(top);
    *--sp = nullptr;                                       // fiber_main's own "return address"
    *--sp = reinterpret_cast<void*>(&fiber_main);          // popped by ret
    for (int i = 0; i < 6; i++) {
        *--sp = nullptr;                                   // rbp rbx r12 r13 r14 r15
    }
    *--sp = nullptr;
    uint32_t* fp = reinterpret_cast<uint32_t*>(sp);
    fp[0] = 0x1f80;  // MXCSR default: round to nearest, exceptions masked
    fp[1] = 0x037f;  // x87 control word default
    f.ctx.sp = sp;
#else
    getcontext(&f.ctx.uc);
    f.ctx.uc.uc_stack.ss_sp = stack_base;
    f.ctx.uc.uc_stack.ss_size = kStack;
    f.ctx.uc.uc_link = nullptr;
    makecontext(&f.ctx.uc, (void (*)()) fiber_main, 0);
#endif
}

void warp_barrier(Warp& w) {
    if (w.alive != w.size) {
        fail("warp-wide operation after %u of the %u lanes of warp %d exited (%s)", w.size - w.alive, w.size,
             g_cur->warp, where().c_str());
    }
    unsigned gen = w.gen;
    g_progress = true;
    if (++w.arrived == w.size) {
        w.arrived = 0;
        w.gen++;
        return;
    }
    g_cur->state = State::WaitWarp;
    g_cur->wait_gen = gen;
    while (w.gen == gen && !g_failed) {
        yield();
    }
    g_cur->state = State::Running;
    g_progress = true;
}

char* stack(size_t i) {
    while (g_stacks.size() <= i) {
        void* p = mmap(nullptr, kStack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED) {
            return nullptr;
        }
        g_stacks.push_back(static_cast<char*>(p));
    }
    return g_stacks[i];
}

bool run_block(unsigned threads) {
    g_fibers.assign(threads, Fiber());
    unsigned bx = g_block_dim.x, by = g_block_dim.y;
    unsigned warps = (threads + 31) / 32;
    g_warps.assign(warps, Warp());
    for (unsigned t = 0; t < threads; t++) {
        Fiber& f = g_fibers[t];
        f.linear = (int) t;
        f.tid = uint3e{t % bx, (t / bx) % by, t / (bx * by)};
        f.warp = (int) (t / 32);
        f.lane = (int) (t % 32);
        g_warps[t / 32].size++;
        g_warps[t / 32].alive++;
        char* s = stack(t);
        if (s == nullptr) {
            g_error = "emulator: cannot map a fiber stack";
            return false;
        }
        init_context(f, s);
    }
    g_alive = threads;
    async_block_start(threads);
    g_bar_gen = 0;
    g_bar_arrived = 0;
    g_bar_acc = 0;
    std::fill(g_dyn_shared.begin(), g_dyn_shared.end(), kGuardByte);
    // Random schedule: about half the warps of the block are slow (they run in one round of 16),
    // so fast warps get far ahead of them between barriers, as a real GPU may let them.
    std::vector<char> slow(warps, 0);
    if (g_mode == 2) {
        for (unsigned w = 0; w < warps; w++) {
            slow[w] = (char) (next_random() & 1);
        }
    }
    std::vector<unsigned> order(threads);
    for (unsigned t = 0; t < threads; t++) {
        order[t] = g_mode == 1 ? threads - 1 - t : t;
    }
    for (;;) {
        bool any = false;
        bool skipped = false;
        g_progress = false;
        if (g_mode == 2) {  // a fresh random order each round
            for (unsigned t = threads - 1; t > 0; t--) {
                std::swap(order[t], order[next_random() % (t + 1)]);
            }
        }
        for (unsigned k = 0; k < threads; k++) {
            unsigned t = order[k];
            Fiber& f = g_fibers[t];
            if (f.state == State::Done) {
                continue;
            }
            any = true;
            // a fiber whose barrier has not opened would only yield again: skip the switch
            if ((f.state == State::WaitBlock && g_bar_gen == f.wait_gen)
                || (f.state == State::WaitWarp && g_warps[(size_t) f.warp].gen == f.wait_gen)) {
                continue;
            }
            if (g_mode == 2 && slow[(size_t) f.warp] && (next_random() & 15) != 0) {
                skipped = true;  // a slow warp mostly sits a round out: fast warps overtake it
                continue;
            }
            g_cur = &f;
            g_thread_idx = &f.tid;
            switch_to(&g_main, &f.ctx);
            g_cur = nullptr;
            g_thread_idx = &g_main_idx;
            if (g_failed) {
                return false;
            }
        }
        if (!any) {
            return true;
        }
        if (!g_progress && !skipped) {
            char buf[200];
            snprintf(buf, sizeof buf, "deadlock in block (%u,%u,%u): threads wait at different barriers",
                     g_block_idx.x, g_block_idx.y, g_block_idx.z);
            g_error = std::string(g_kernel) + ": " + buf;
            g_failed = true;
            return false;
        }
    }
}

bool check_guards(std::string* msg) {
    for (auto& [addr, a] : g_allocs) {
        const unsigned char* user = reinterpret_cast<const unsigned char*>(addr);
        for (size_t i = 0; i < kGuard; i++) {
            if (user[-(ptrdiff_t) kGuard + (ptrdiff_t) i] != kGuardByte) {
                char buf[200];
                snprintf(buf, sizeof buf, "write %zu bytes before the start of an allocation of %zu bytes at %p",
                         kGuard - i, a.bytes, (void*) addr);
                *msg = buf;
                return false;
            }
            if (user[a.bytes + i] != kGuardByte) {
                char buf[200];
                snprintf(buf, sizeof buf, "write %zu bytes past the end of an allocation of %zu bytes at %p", i,
                         a.bytes, (void*) addr);
                *msg = buf;
                return false;
            }
        }
    }
    return true;
}

}  // namespace

void fail(const char* fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (!g_failed) {
        g_error = std::string(g_kernel) + ": " + buf;
        g_failed = true;
    }
    if (g_cur != nullptr) {
        switch_to(&g_cur->ctx, &g_main);
    }
    abort();  // a failure outside any fiber is an emulator bug
}

void sync_threads() {
    if (g_alive != g_threads) {
        fail("__syncthreads after %u threads of the block returned (%s)", g_threads - g_alive, where().c_str());
    }
    unsigned gen = g_bar_gen;
    g_progress = true;
    if (++g_bar_arrived == g_alive) {
        g_bar_arrived = 0;
        g_bar_gen++;
        g_bar_result = g_bar_acc;
        g_bar_acc = 0;
        return;
    }
    g_cur->state = State::WaitBlock;
    g_cur->wait_gen = gen;
    while (g_bar_gen == gen && !g_failed) {
        yield();
    }
    g_cur->state = State::Running;
    g_progress = true;
}

int sync_threads_count(int pred) {
    g_bar_acc += pred != 0;
    sync_threads();
    return g_bar_result;
}

void sync_warp() {
    warp_barrier(g_warps[(size_t) g_cur->warp]);
}

uint64_t shfl_raw(uint64_t v, int arg, int mode, int width) {
    Warp& w = g_warps[(size_t) g_cur->warp];
    int me = g_cur->lane;
    if (width <= 0 || width > 32 || (width & (width - 1)) != 0) {
        fail("shuffle width %d is not a power of two up to 32", width);
    }
    int seg = me & ~(width - 1);
    int src = me;
    switch (mode) {
        case 0: src = seg + (arg & (width - 1)); break;
        case 1: src = me ^ arg; if (src >= seg + width) src = me; break;
        case 2: src = me + arg; if (src >= seg + width) src = me; break;
        default: src = me - arg; if (src < seg) src = me; break;
    }
    if (src < 0 || src >= (int) w.size) {
        src = me;
    }
    w.slot[me] = v;
    warp_barrier(w);
    uint64_t r = w.slot[src];
    warp_barrier(w);  // nobody overwrites a slot before every lane has read
    return r;
}

unsigned ballot(int pred) {
    Warp& w = g_warps[(size_t) g_cur->warp];
    w.pred[g_cur->lane] = pred != 0;
    warp_barrier(w);
    unsigned bits = 0;
    for (unsigned l = 0; l < w.size; l++) {
        bits |= (unsigned) w.pred[l] << l;
    }
    warp_barrier(w);
    return bits;
}

void* dynamic_shared() {
    // 128-byte aligned, as the device aligns dynamic shared memory at least this much
    uintptr_t p = (uintptr_t) g_dyn_shared.data();
    return reinterpret_cast<void*>((p + 127) & ~(uintptr_t) 127);
}

int lane_id() {
    return g_cur->lane;
}

int thread_linear() {
    return g_cur->linear;
}

void warp_rendezvous() {
    warp_barrier(g_warps[(size_t) g_cur->warp]);
}

void check_align(const void* p, int a, const char* file, int line) {
    if (((uintptr_t) p) % (uintptr_t) a != 0) {
        fail("%s:%d: %d-byte aligned access at misaligned address %p (%s)", file, line, a, p, where().c_str());
    }
}

}  // namespace cria_emu

using namespace cria_emu;

extern "C" {

/** The last error message (empty when none). */
const char* emu_last_error() {
    return g_error.c_str();
}

/**
 * How threads are scheduled from now on: 0 in order, 1 in reverse, 2 in a random order in which
 * random warps are slow (seeded), which lets fast warps overtake slow ones across barrier-free
 * stretches and so exposes missing barriers that the fixed orders hide.
 */
void emu_set_schedule(int mode, long long seed) {
    g_mode = mode;
    g_rng = (uint64_t) seed * 0x9e3779b97f4a7c15ull + 1;
}

/** Allocates `bytes` of emulated device memory with guard zones; the content is 0xFF (NaN) bytes. */
void* emu_malloc(size_t bytes) {
    std::lock_guard<std::mutex> lock(g_lock);
    unsigned char* raw = static_cast<unsigned char*>(aligned_alloc(256, kGuard + ((bytes + kGuard + 255) / 256) * 256));
    if (raw == nullptr) {
        return nullptr;
    }
    std::memset(raw, kGuardByte, kGuard + bytes + kGuard);
    unsigned char* user = raw + kGuard;
    g_allocs[(uintptr_t) user] = Alloc{bytes};
    return user;
}

/** Frees an allocation; returns 0, or -1 (message in emu_last_error) when it was not allocated or its guards were overwritten. */
int emu_free(void* p) {
    std::lock_guard<std::mutex> lock(g_lock);
    auto it = g_allocs.find((uintptr_t) p);
    if (it == g_allocs.end()) {
        g_error = "emu_free of an address that is not an allocation";
        return -1;
    }
    std::string msg;
    bool ok = check_guards(&msg);
    g_allocs.erase(it);
    free(static_cast<unsigned char*>(p) - kGuard);
    if (!ok) {
        g_error = "guard zone overwritten: " + msg;
        return -1;
    }
    return 0;
}

/**
 * Launches `fn` over a grid. `sig` has one letter per argument (p pointer, i int32, f float,
 * d double, l int64); `args` holds each argument in an 8-byte little-endian slot. Returns 0, or
 * -1 with the reason in emu_last_error (a failed check, a deadlock, a write outside an allocation).
 */
int emu_launch(void* fn, const char* name, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
               unsigned bz, unsigned shmem, const char* sig, uint64_t* args) {
    std::lock_guard<std::mutex> lock(g_lock);
    g_error.clear();
    g_failed = false;
    g_kernel = name;
    size_t n = std::strlen(sig);
    static std::vector<ffi_type*> types;
    types.assign(n, nullptr);
    g_values.assign(n, nullptr);
    for (size_t i = 0; i < n; i++) {
        switch (sig[i]) {
            case 'p': types[i] = &ffi_type_pointer; break;
            case 'i': types[i] = &ffi_type_sint32; break;
            case 'f': types[i] = &ffi_type_float; break;
            case 'd': types[i] = &ffi_type_double; break;
            case 'l': types[i] = &ffi_type_sint64; break;
            default:
                g_error = std::string(name) + ": bad signature letter '" + sig[i] + "'";
                return -1;
        }
        g_values[i] = &args[i];
    }
    if (ffi_prep_cif(&g_cif, FFI_DEFAULT_ABI, (unsigned) n, &ffi_type_void, types.data()) != FFI_OK) {
        g_error = std::string(name) + ": ffi_prep_cif failed";
        return -1;
    }
    unsigned threads = bx * by * bz;
    if (threads == 0 || threads > 1024 || gx == 0 || gy == 0 || gz == 0 || gy > 65535 || gz > 65535) {
        char buf[160];
        snprintf(buf, sizeof buf, "%s: invalid launch grid (%u,%u,%u) block (%u,%u,%u)", name, gx, gy, gz, bx, by, bz);
        g_error = buf;
        return -1;
    }
    if (shmem > kMaxDynamicShared) {
        g_error = std::string(name) + ": " + std::to_string(shmem) + " bytes of dynamic shared memory, more than the "
                + std::to_string(kMaxDynamicShared) + " that every target (sm_86/sm_89 included) allows a block";
        return -1;
    }
    g_fn = fn;
    g_threads = threads;
    g_grid_dim = uint3e{gx, gy, gz};
    g_block_dim = uint3e{bx, by, bz};
    g_dyn_shared.assign(shmem + 128, kGuardByte);
    for (unsigned z = 0; z < gz; z++) {
        for (unsigned y = 0; y < gy; y++) {
            for (unsigned x = 0; x < gx; x++) {
                g_block_idx = uint3e{x, y, z};
                if (!run_block(threads)) {
                    if (g_error.empty()) {
                        g_error = std::string(name) + ": failed";
                    }
                    return -1;
                }
            }
        }
    }
    std::string msg;
    if (!check_guards(&msg)) {
        g_error = std::string(name) + ": " + msg;
        return -1;
    }
    return 0;
}

}  // extern "C"
