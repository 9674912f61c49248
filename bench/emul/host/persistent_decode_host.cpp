// decode_persistent.cu's kernel run on the CPU (README.md here): one decode step of one row through L layers of
// random bf16 weights at a given shape and grid size, every access checked by AddressSanitizer, then the residual,
// the slot's states and conv windows compared with a plain double-precision step; the other slot must stay as it was.
// Usage: persistent_decode_host d d_inner H P N G K L grid state(f32|bf16)
#include <pthread.h>
#include <sanitizer/asan_interface.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <charconv>
#include <cmath>
#include <random>
#include <string_view>
#include <vector>

#include "cuda_host_shim.h"

namespace pcm::cuda {
namespace {
alignas(128) uint4 smem[232448 / 16];  // the kernel's dynamic shared memory (per process: per block)
}
}  // namespace pcm::cuda

#include "kernels/cuda/decode_persistent.cu"

namespace {

// ---- global memory: one shared mapping, poisoned except the buffers handed out -------------------------
char* g_base = nullptr;
size_t g_size = 0, g_used = 0;

void* galloc(size_t bytes) {
  g_used = (g_used + 255) / 256 * 256 + 256;  // >= 256 poisoned bytes between buffers, each 256-byte aligned
  if (g_used + bytes > g_size) std::abort();
  void* p = g_base + g_used;
  ASAN_UNPOISON_MEMORY_REGION(p, bytes);
  g_used += bytes;
  return p;
}
template <class T>
T* galloc_n(int64_t n) {
  return static_cast<T*>(galloc(static_cast<size_t>(n) * sizeof(T)));
}

std::atomic<int> g_bad_prefetch{0};

}  // namespace

void emul_prefetch_l2(const void* p) {
  if (__asan_address_is_poisoned(p) && g_bad_prefetch.fetch_add(1) < 3)
    std::fprintf(stderr, "EMUL prefetch_l2 of %p outside every buffer (block %u thread %u)\n", p, blockIdx.x,
                 threadIdx.x);
}

namespace {

float bf16_round(float v) { return __bfloat162float(__float2bfloat16(v)); }
double silu(double x) { return x / (1.0 + std::exp(-x)); }

struct Shape {
  int64_t d, d_inner, H, P, N, G, K, L;
  int64_t conv_dim() const { return d_inner + 2 * G * N; }
  int64_t dpr() const { return d_inner + conv_dim() + H; }
};

struct HostLayer {
  std::vector<float> in_proj, out_proj, norm, conv_w, conv_b, dt_bias, A, D, gate_norm;  // projections bf16-exact
};

template <class S>
struct Run {
  Shape s;
  int grid;
  static constexpr int kSlots = 2, kSlot = 1, kPos = 2;
  float eps = 1e-5f, dt_lo = 0.0f, dt_hi = 1e30f;
  std::vector<HostLayer> host;
  std::vector<float> resid0, ssm0, conv0;  // the row's residual; both slots' states and windows before the step
  pcm::cuda::PersistentDecode a{};
  unsigned* barrier = nullptr;

  void make(uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    auto vec = [&](int64_t n, float lo, float hi) {
      std::vector<float> v(static_cast<size_t>(n));
      for (float& x : v) x = lo + (hi - lo) * (u(rng) * 0.5f + 0.5f);
      return v;
    };
    auto up_f32 = [&](const std::vector<float>& v) {
      float* p = galloc_n<float>(static_cast<int64_t>(v.size()));
      std::copy(v.begin(), v.end(), p);
      return p;
    };
    auto up_bf16 = [&](std::vector<float>& v) {
      auto* p = galloc_n<__nv_bfloat16>(static_cast<int64_t>(v.size()));
      for (size_t i = 0; i < v.size(); ++i) p[i] = __float2bfloat16(v[i]), v[i] = __bfloat162float(p[i]);
      return static_cast<const void*>(p);
    };
    const int64_t cd = s.conv_dim(), dpr = s.dpr();
    auto* layers = galloc_n<pcm::cuda::DeviceLayer>(s.L);
    for (int64_t l = 0; l < s.L; ++l) {
      HostLayer h;
      h.in_proj = vec(dpr * s.d, -0.05f, 0.05f);
      h.out_proj = vec(s.d * s.d_inner, -0.05f, 0.05f);
      h.norm = vec(s.d, 0.9f, 1.1f);
      h.conv_w = vec(cd * s.K, -0.5f, 0.5f);
      h.conv_b = vec(cd, -0.5f, 0.5f);
      h.dt_bias = vec(s.H, -4.0f, -1.0f);
      h.A = vec(s.H, -4.0f, -1.0f);
      h.D = vec(s.H, 0.9f, 1.1f);
      h.gate_norm = vec(s.d_inner, 0.9f, 1.1f);
      pcm::cuda::DeviceLayer& dl = layers[l];
      dl.in_proj = up_bf16(h.in_proj);
      dl.out_proj = up_bf16(h.out_proj);
      dl.norm = up_f32(h.norm), dl.conv_w = up_f32(h.conv_w), dl.conv_b = up_f32(h.conv_b);
      dl.dt_bias = up_f32(h.dt_bias), dl.A = up_f32(h.A), dl.D = up_f32(h.D), dl.gate_norm = up_f32(h.gate_norm);
      host.push_back(std::move(h));
    }
    resid0 = vec(s.d, -1.0f, 1.0f);
    const int64_t ssm_n = kSlots * s.L * s.H * s.P * s.N, conv_n = kSlots * s.L * s.K * cd;
    ssm0 = vec(ssm_n, -1.0f, 1.0f);
    for (float& x : ssm0) x = static_cast<float>(static_cast<S>(x));  // representable in S
    conv0 = vec(conv_n, -1.0f, 1.0f);
    S* ssm = galloc_n<S>(ssm_n);
    for (int64_t i = 0; i < ssm_n; ++i) ssm[i] = static_cast<S>(ssm0[i]);
    int32_t* ints = galloc_n<int32_t>(2);
    ints[0] = kSlot, ints[1] = kPos;
    a = pcm::cuda::PersistentDecode{layers,
                                    static_cast<int32_t>(s.L),
                                    up_f32(resid0),
                                    galloc_n<float>(dpr),
                                    galloc_n<float>(cd),
                                    galloc_n<float>(s.H),
                                    galloc_n<float>(s.d_inner),
                                    galloc_n<float>(s.H),
                                    ssm,
                                    std::is_same_v<S, __nv_bfloat16>,
                                    up_f32(conv0),
                                    ints,
                                    ints + 1,
                                    s.d,
                                    s.d_inner,
                                    cd,
                                    static_cast<int32_t>(s.K),
                                    pcm::cuda::SsdDims{static_cast<int32_t>(s.H), static_cast<int32_t>(s.P),
                                                       static_cast<int32_t>(s.G), static_cast<int32_t>(s.N)},
                                    s.d_inner / s.G,
                                    eps,
                                    dt_lo,
                                    dt_hi};
    barrier = galloc_n<unsigned>(1);
    *barrier = 0;
  }

  // One layer of the step in double precision (bf16 rounding where the kernel rounds: the projections' inputs, the
  // state), on the row's residual, the layer's state [H, P, N] and conv window [K, conv_dim] of the slot.
  void reference_layer(int64_t l, std::vector<double>& resid, double* state, double* win) const {
    const int64_t d = s.d, di = s.d_inner, cd = s.conv_dim(), H = s.H, P = s.P, N = s.N, K = s.K;
    const int64_t hpg = H / s.G, group = di / s.G;
    const HostLayer& w = host[static_cast<size_t>(l)];
    double ss = 0;
    for (double v : resid) ss += v * v;
    const double scale = 1.0 / std::sqrt(ss / d + eps);
    std::vector<double> xn(d), out(s.dpr());
    for (int64_t k = 0; k < d; ++k) xn[k] = bf16_round(static_cast<float>(resid[k] * scale * w.norm[k]));
    for (int64_t r = 0; r < s.dpr(); ++r) {
      double acc = 0;
      for (int64_t k = 0; k < d; ++k) acc += w.in_proj[r * d + k] * xn[k];
      out[r] = acc;
    }
    std::vector<double> xbc(cd), dt(H), y(di);
    for (int64_t c = 0; c < cd; ++c) {
      const double x = out[di + c];
      double acc = w.conv_b[c] + w.conv_w[c * K + K - 1] * x;
      for (int64_t k = 0; k < K - 1; ++k) acc += w.conv_w[c * K + k] * win[((kPos + k + 1) % K) * cd + c];
      win[kPos * cd + c] = x;
      xbc[c] = silu(acc);
    }
    for (int64_t h = 0; h < H; ++h) {
      const double u = out[di + cd + h] + w.dt_bias[h];
      dt[h] = std::min<double>(std::max<double>(u > 20 ? u : std::log1p(std::exp(u)), dt_lo), dt_hi);
    }
    std::vector<double> ssq(H, 0.0);
    for (int64_t h = 0; h < H; ++h) {
      const int64_t g = h / (H / s.G);
      const double decay = std::exp(dt[h] * w.A[h]);
      double* st = state + h * P * N;
      for (int64_t p = 0; p < P; ++p) {
        const double x = xbc[h * P + p];
        double acc = 0;
        for (int64_t n = 0; n < N; ++n) {
          const double v = decay * st[p * N + n] + dt[h] * x * xbc[H * P + g * N + n];
          st[p * N + n] = std::is_same_v<S, __nv_bfloat16> ? bf16_round(static_cast<float>(v)) : v;  // y: unrounded
          acc += v * xbc[H * P + s.G * N + g * N + n];
        }
        const double gy = (acc + w.D[h] * x) * silu(out[h * P + p]);
        y[h * P + p] = gy;
        ssq[h] += gy * gy;
      }
    }
    std::vector<double> yn(di);
    for (int64_t gi = 0; gi < s.G; ++gi) {
      double t = 0;
      for (int64_t j = 0; j < hpg; ++j) t += ssq[gi * hpg + j];
      const double sc = 1.0 / std::sqrt(t / group + eps);
      for (int64_t i = gi * group; i < (gi + 1) * group; ++i)
        yn[i] = bf16_round(static_cast<float>(y[i] * sc * w.gate_norm[i]));
    }
    for (int64_t r = 0; r < d; ++r) {
      double acc = 0;
      for (int64_t k = 0; k < di; ++k) acc += w.out_proj[r * di + k] * yn[k];
      resid[r] += acc;
    }
  }

  // The whole step from the initial values.
  void reference(std::vector<double>& resid, std::vector<double>& ssm, std::vector<double>& conv) const {
    resid.assign(resid0.begin(), resid0.end());
    ssm.assign(ssm0.begin(), ssm0.end());
    conv.assign(conv0.begin(), conv0.end());
    const int64_t layer_state = s.H * s.P * s.N, window = s.K * s.conv_dim();
    for (int64_t l = 0; l < s.L; ++l)
      reference_layer(l, resid, ssm.data() + (kSlot * s.L + l) * layer_state, conv.data() + (kSlot * s.L + l) * window);
  }

  // One block: blockDim.x threads run the kernel; the dynamic shared memory past the launch's size is poisoned.
  static void* thread_main(void* arg) {
    auto* r = static_cast<std::pair<Run*, unsigned>*>(arg);
    emul::thread_idx = {r->second, 0, 0};
    int J = 0;
    const int lr = pcm::cuda::step_lanes<S>(static_cast<int>(r->first->s.N), &J);
    constexpr int V = 16 / sizeof(S);
    if (J == 1)
      pcm::cuda::decode_persistent_kernel<S, V, 1>(r->first->a, r->first->barrier, lr);
    else
      pcm::cuda::decode_persistent_kernel<S, V, 2>(r->first->a, r->first->barrier, lr);
    return nullptr;
  }
  void block(unsigned b) {
    using namespace pcm::cuda;
    const size_t dyn = smem_bytes(s.d, s.d_inner);
    ASAN_POISON_MEMORY_REGION(reinterpret_cast<char*>(smem) + dyn, sizeof(smem) - dyn);
    emul::block_idx = {b, 0, 0};
    emul::block_dim = dim3(kThreads);
    emul::grid_dim = dim3(static_cast<unsigned>(grid));
    emul::block_barrier = new std::barrier<>(kThreads);
    emul::warps = new emul::Warp[kWarps];
    std::vector<pthread_t> th(kThreads);
    std::vector<std::pair<Run*, unsigned>> args(kThreads);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 1 << 20);
    for (unsigned t = 0; t < kThreads; ++t) {
      args[t] = {this, t};
      if (pthread_create(&th[t], &attr, thread_main, &args[t])) {
        std::fprintf(stderr, "EMUL block %u: no thread %u (ulimit -u?)\n", b, t);
        std::abort();
      }
    }
    for (auto& t : th) pthread_join(t, nullptr);
    if (pcm::cuda::emul_copies != pcm::cuda::emul_lane0_waits) {
      std::fprintf(stderr, "EMUL block %u: %llu bulk copies, %llu taken: copies in flight at exit\n", b,
                   static_cast<unsigned long long>(pcm::cuda::emul_copies.load()),
                   static_cast<unsigned long long>(pcm::cuda::emul_lane0_waits.load()));
      std::exit(4);
    }
  }
};

// The largest |ref - got| over the largest |ref|; a NaN or infinity in got counts as infinite (a NaN compares false,
// so a plain maximum would pass it: a stage read while its copy is in flight reads NaN, bulk_copy.cuh).
double max_rel(const std::vector<double>& ref, const float* got, int64_t n, int64_t* at) {
  double worst = 0, scale = 1e-6;
  for (int64_t i = 0; i < n; ++i) scale = std::max(scale, std::abs(ref[i]));
  for (int64_t i = 0; i < n; ++i) {
    const double e = std::isfinite(got[i]) ? std::abs(ref[i] - got[i]) / scale : HUGE_VAL;
    if (e > worst) worst = e, *at = i;
    if (e == HUGE_VAL) break;
  }
  return worst;
}

// Runs the grid (each block a process); false when a block ended badly (the others are then stopped).
template <class S>
bool launch_grid(Run<S>& r) {
  std::vector<pid_t> kids;
  for (int b = 0; b < r.grid; ++b) {
    const pid_t pid = fork();
    if (pid == 0) {
      r.block(static_cast<unsigned>(b));
      std::fflush(stderr);
      _exit(g_bad_prefetch.load() ? 3 : 0);
    }
    kids.push_back(pid);
  }
  int failed = 0;
  for (size_t left = kids.size(); left > 0; --left) {
    int st = 0;
    waitpid(-1, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
      if (!failed++)  // the others would wait at the next grid barrier for ever
        for (pid_t pid : kids) kill(pid, SIGKILL);
    }
  }
  if (failed) std::printf("FAIL: a block ended badly (see stderr); the others were stopped\n");
  return failed == 0;
}

// EMUL_PER_LAYER=1: each layer a launch of its own (L = 1, slot 0, the layer's state and window), compared with one
// reference layer from the kernel's own inputs, so a drift of the whole step is pinned to a layer.
template <class S>
int run_per_layer(Run<S>& r) {
  const Shape& s = r.s;
  const_cast<int32_t*>(r.a.slot)[0] = 0;
  const pcm::cuda::DeviceLayer* layers = r.a.layers;
  S* ssm = static_cast<S*>(r.a.ssm);
  float* conv = r.a.conv;
  const int64_t layer_state = s.H * s.P * s.N, window = s.K * s.conv_dim();
  int bad = 0;
  for (int64_t l = 0; l < s.L; ++l) {
    std::vector<double> resid(r.a.resid, r.a.resid + s.d), st(static_cast<size_t>(layer_state)),
        win(conv + l * window, conv + (l + 1) * window);
    for (int64_t i = 0; i < layer_state; ++i) st[i] = static_cast<float>(ssm[l * layer_state + i]);
    r.a.layers = layers + l, r.a.L = 1, r.a.ssm = ssm + l * layer_state, r.a.conv = conv + l * window;
    *r.barrier = 0;
    if (!launch_grid(r)) return 1;
    r.reference_layer(l, resid, st.data(), win.data());
    std::vector<float> st_got(static_cast<size_t>(layer_state));
    for (int64_t i = 0; i < layer_state; ++i) st_got[i] = static_cast<float>(ssm[l * layer_state + i]);
    int64_t at[3] = {0, 0, 0};
    const double e_resid = max_rel(resid, r.a.resid, s.d, &at[0]);
    const double e_state = max_rel(st, st_got.data(), layer_state, &at[1]);
    const double e_conv = max_rel(win, conv + l * window, window, &at[2]);
    const bool ok = e_resid < 2e-3 && e_state < (std::is_same_v<S, float> ? 1e-4 : 1e-2) && e_conv < 1e-5;
    bad += !ok;
    std::printf("\n  layer %lld: %s resid %.2e (at %lld), state %.2e (at %lld), conv %.2e (at %lld)", (long long)l,
                ok ? "ok" : "FAIL", e_resid, (long long)at[0], e_state, (long long)at[1], e_conv, (long long)at[2]);
  }
  std::printf("\n%s\n", bad ? "FAIL" : "state: ok: every layer");
  return bad ? 1 : 0;
}

template <class S>
int run(const Shape& s, int grid) {
  Run<S> r{s, grid};
  r.make(42);
  if (std::getenv("EMUL_PER_LAYER")) return run_per_layer(r);
  if (!launch_grid(r)) return 1;
  std::vector<double> resid, ssm, conv;
  r.reference(resid, ssm, conv);
  std::vector<float> ssm_got(ssm.size());
  const S* st = static_cast<const S*>(r.a.ssm);
  for (size_t i = 0; i < ssm.size(); ++i) ssm_got[i] = static_cast<float>(st[i]);
  const int64_t half_ssm = static_cast<int64_t>(ssm.size()) / 2, half_conv = static_cast<int64_t>(conv.size()) / 2;
  int64_t at[3] = {0, 0, 0};
  const double e_resid = max_rel(resid, r.a.resid, s.d, &at[0]);
  const double e_ssm = max_rel(ssm, ssm_got.data(), static_cast<int64_t>(ssm.size()), &at[1]);
  const double e_conv = max_rel(conv, r.a.conv, static_cast<int64_t>(conv.size()), &at[2]);
  bool other_slot_kept = true;
  for (int64_t i = 0; i < half_ssm; ++i) other_slot_kept &= ssm_got[i] == r.ssm0[i];
  for (int64_t i = 0; i < half_conv; ++i) other_slot_kept &= r.a.conv[i] == r.conv0[i];
  const double tol_state = std::is_same_v<S, float> ? 1e-4 : 1e-2;
  const bool ok = e_resid < 2e-3 && e_ssm < tol_state && e_conv < 1e-5 && other_slot_kept;
  std::printf("%s: resid %.2e (at %lld), state %.2e (at %lld), conv %.2e, slot 0 %s\n", ok ? "ok" : "FAIL", e_resid,
              static_cast<long long>(at[0]), e_ssm, static_cast<long long>(at[1]), e_conv,
              other_slot_kept ? "kept" : "CHANGED");
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 11) {
    std::fprintf(stderr, "usage: %s d d_inner H P N G K L grid f32|bf16\n", argv[0]);
    return 2;
  }
  Shape s{};
  int64_t grid = 0;
  int64_t* f[] = {&s.d, &s.d_inner, &s.H, &s.P, &s.N, &s.G, &s.K, &s.L, &grid};
  const char* names[] = {"d", "d_inner", "H", "P", "N", "G", "K", "L", "grid"};
  for (int i = 0; i < 9; ++i) {
    const std::string_view a = argv[i + 1];
    const auto [end, ec] = std::from_chars(a.data(), a.data() + a.size(), *f[i]);
    if (ec != std::errc() || end != a.data() + a.size() || *f[i] < 1 || *f[i] > (int64_t{1} << 20)) {
      std::fprintf(stderr, "%s: '%s' is not a whole number from 1 to 2^20\n", names[i], argv[i + 1]);
      return 2;
    }
  }
  const std::string state = argv[10];
  const bool bf16 = state == "bf16";
  int J = 0;
  const char* bad = state != "f32" && !bf16                      ? "the state must be f32 or bf16"
                    : s.d_inner != s.H * s.P                     ? "d_inner must be H x P"
                    : s.H % s.G != 0 || s.G > 32                 ? "G must divide H (at most 32 groups)"
                    : s.d % 8 != 0 || s.d_inner % (8 * s.G) != 0 ? "d and d_inner / G must be multiples of 8"
                    : s.K < 2 || s.K > 8                         ? "K must be 2 to 8"
                    : grid > 1024                                ? "grid must be at most 1024"
                    : (bf16 ? pcm::cuda::step_lanes<__nv_bfloat16>(static_cast<int>(s.N), &J)
                            : pcm::cuda::step_lanes<float>(static_cast<int>(s.N), &J)) == 0
                        ? "N must split into 16-byte packs over a warp (the kernel's step)"
                        : nullptr;
  if (bad) {
    std::fprintf(stderr, "persistent_decode_host: %s\n", bad);
    return 2;
  }
  const int64_t cd = s.conv_dim(), per_layer = (s.dpr() * s.d + s.d * s.d_inner) * 2 +
                                               (s.d + cd * (s.K + 1) + 3 * s.H + s.d_inner) * 4 + 16 * 512;
  g_size = static_cast<size_t>(s.L * per_layer + 2 * s.L * (s.H * s.P * s.N + s.K * cd) * 4 +
                               (s.dpr() + cd + 3 * s.H + s.d_inner + s.d) * 4) *
               11 / 10 +
           (size_t{16} << 20);
  g_base = static_cast<char*>(
      mmap(nullptr, g_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0));
  if (g_base == MAP_FAILED) {
    std::fprintf(stderr, "persistent_decode_host: no %zu-byte mapping for the model\n", g_size);
    return 2;
  }
  ASAN_POISON_MEMORY_REGION(g_base, g_size);
  std::printf("d %lld d_inner %lld H %lld P %lld N %lld G %lld K %lld L %lld, grid %d, %s state: ", (long long)s.d,
              (long long)s.d_inner, (long long)s.H, (long long)s.P, (long long)s.N, (long long)s.G, (long long)s.K,
              (long long)s.L, static_cast<int>(grid), bf16 ? "bf16" : "fp32");
  std::fflush(stdout);
  return bf16 ? run<__nv_bfloat16>(s, static_cast<int>(grid)) : run<float>(s, static_cast<int>(grid));
}
