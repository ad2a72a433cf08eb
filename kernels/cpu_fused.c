/* Fused CPU kernels for bf16-autocast training: each op is one pass over memory.
 *
 * On one CPU thread an elementwise op costs a pass over its tensors, and in a training step the
 * tensors are cold: eager PyTorch spends ~100 ms of a 0.47 s `small` step in such passes (the
 * fp32 softmax and its bf16 copy, RMSNorm, SwiGLU, the loss). Each function here does in one
 * pass what PyTorch does in two to five, computing in fp32 and reading/writing bf16 where the
 * autocast path would have rounded to bf16 anyway. The Python side (kernels/cpu_fused.py)
 * compiles this file with the system C compiler on first use and checks every argument;
 * trainer/ falls back to its PyTorch path when there is no compiler.
 *
 * Conventions: bf16 is stored as uint16_t (the top half of an fp32), rounded to nearest even;
 * all arrays contiguous, row-major; sequential (one thread, deterministic). Reductions carry
 * `omp simd` so the compiler may vectorise them (built with -fopenmp-simd: no OpenMP runtime).
 */
#include <math.h>
#include <stdint.h>

typedef uint16_t bf16;

typedef union {
    uint32_t u;
    float f;
} bits32; /* type punning through a union: defined in C, and it vectorises */

static inline float bf2f(bf16 h) {
    bits32 v = {.u = (uint32_t)h << 16};
    return v.f;
}

static inline bf16 f2bf(float f) {
    bits32 v = {.f = f};
    uint32_t u = v.u;
    uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    return (bf16)(((u & 0x7fffffffu) > 0x7f800000u) ? ((u >> 16) | 0x40u) : rounded); /* NaN stays NaN */
}

/* exp(x) to ~2 ulp (Cephes' expf polynomial after reduction by ln 2); 0 below -87 (fp32's
 * normal range ends there), so masked scores give exact zeros. */
static inline float exp_f(float x) {
    int under = x < -87.0f;
    x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x); /* not fminf/fmaxf: their NaN rules block vectorising */
    float n = rintf(x * 1.44269504088896341f);
    float r = fmaf(n, -0.693359375f, x);
    r = fmaf(n, 2.12194440e-4f, r);
    float p = 1.9875691500e-4f;
    p = fmaf(p, r, 1.3981999507e-3f);
    p = fmaf(p, r, 8.3334519073e-3f);
    p = fmaf(p, r, 4.1665795894e-2f);
    p = fmaf(p, r, 1.6666665459e-1f);
    p = fmaf(p, r, 5.0000001201e-1f);
    p = fmaf(p, r * r, r) + 1.0f;
    bits32 scale = {.u = (uint32_t)((int32_t)n + 127) << 23};
    return under ? 0.0f : p * scale.f;
}

/* ---- RMSNorm: out = bf16(w * x * rstd), rstd = 1 / sqrt(mean(x^2) + eps) ---- */

void rmsnorm_fwd(const float *x, const float *w, bf16 *out, float *rstd, int64_t rows, int64_t cols, float eps) {
    for (int64_t i = 0; i < rows; i++) {
        const float *xr = x + i * cols;
        bf16 *o = out + i * cols;
        float ss = 0.0f;
#pragma omp simd reduction(+ : ss)
        for (int64_t j = 0; j < cols; j++) ss += xr[j] * xr[j];
        float r = 1.0f / sqrtf(ss / (float)cols + eps);
        rstd[i] = r;
#pragma omp simd
        for (int64_t j = 0; j < cols; j++) o[j] = f2bf(xr[j] * r * w[j]);
    }
}

/* dx = rstd (g w - n mean(g w n)), n = x rstd; dw += sum over rows of g n (fp64 accumulator). */
void rmsnorm_bwd(const bf16 *g, const float *x, const float *w, const float *rstd, float *dx, double *dw,
                 int64_t rows, int64_t cols) {
    for (int64_t i = 0; i < rows; i++) {
        const bf16 *gr = g + i * cols;
        const float *xr = x + i * cols;
        float *d = dx + i * cols;
        float r = rstd[i], dot = 0.0f;
#pragma omp simd reduction(+ : dot)
        for (int64_t j = 0; j < cols; j++) dot += bf2f(gr[j]) * w[j] * (xr[j] * r);
        dot /= (float)cols;
#pragma omp simd
        for (int64_t j = 0; j < cols; j++) {
            float gj = bf2f(gr[j]), n = xr[j] * r;
            d[j] = r * (gj * w[j] - n * dot);
            dw[j] += (double)(gj * n);
        }
    }
}

/* ---- attention softmax over bf16 scores, in place: p = softmax(scale s + mask) ----
 * s: (batch * heads, rows, cols); mask: fp32 additive, row j of batch b at
 * mask + b * mask_batch_stride + r * mask_row_stride (shared by the heads), or NULL. */
void attn_softmax_fwd(bf16 *s, const float *mask, int64_t batch_heads, int64_t heads, int64_t rows, int64_t cols,
                      int64_t mask_batch_stride, int64_t mask_row_stride, float scale) {
    float z[cols];
    for (int64_t bh = 0; bh < batch_heads; bh++) {
        const float *mb = mask ? mask + (bh / heads) * mask_batch_stride : 0;
        for (int64_t r = 0; r < rows; r++) {
            bf16 *row = s + (bh * rows + r) * cols;
            float mx = -INFINITY, sum = 0.0f;
            if (mb) {
                const float *m = mb + r * mask_row_stride;
#pragma omp simd reduction(max : mx)
                for (int64_t j = 0; j < cols; j++) {
                    z[j] = bf2f(row[j]) * scale + m[j];
                    mx = z[j] > mx ? z[j] : mx;
                }
            } else {
#pragma omp simd reduction(max : mx)
                for (int64_t j = 0; j < cols; j++) {
                    z[j] = bf2f(row[j]) * scale;
                    mx = z[j] > mx ? z[j] : mx;
                }
            }
#pragma omp simd reduction(+ : sum)
            for (int64_t j = 0; j < cols; j++) {
                z[j] = exp_f(z[j] - mx);
                sum += z[j];
            }
            float inv = 1.0f / sum;
#pragma omp simd
            for (int64_t j = 0; j < cols; j++) row[j] = f2bf(z[j] * inv);
        }
    }
}

/* In place on dp (bf16, n rows of cols): ds = scale p (dp - sum(dp p)), the gradient of the
 * pre-scale scores. */
void attn_softmax_bwd(bf16 *dp, const bf16 *p, int64_t n, int64_t cols, float scale) {
    for (int64_t i = 0; i < n; i++) {
        bf16 *d = dp + i * cols;
        const bf16 *pr = p + i * cols;
        float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
        for (int64_t j = 0; j < cols; j++) dot += bf2f(d[j]) * bf2f(pr[j]);
#pragma omp simd
        for (int64_t j = 0; j < cols; j++) d[j] = f2bf(scale * bf2f(pr[j]) * (bf2f(d[j]) - dot));
    }
}

/* ---- SwiGLU: h = silu(gate) * up ---- */

void swiglu_fwd(const bf16 *gate, const bf16 *up, bf16 *h, int64_t n) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        float g = bf2f(gate[i]);
        h[i] = f2bf(g / (1.0f + exp_f(-g)) * bf2f(up[i]));
    }
}

/* d gate = dh up sig (1 + g (1 - sig)); d up = dh silu(g). */
void swiglu_bwd(const bf16 *dh, const bf16 *gate, const bf16 *up, bf16 *dgate, bf16 *dup, int64_t n) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        float g = bf2f(gate[i]), d = bf2f(dh[i]);
        float sig = 1.0f / (1.0f + exp_f(-g));
        dup[i] = f2bf(d * g * sig);
        dgate[i] = f2bf(d * bf2f(up[i]) * sig * (1.0f + g * (1.0f - sig)));
    }
}

/* ---- cross-entropy over bf16 logits (rows, vocab) ----
 * Writes each row's log-sum-exp; returns the summed loss over rows whose target is not
 * ``ignore`` (their count is the caller's). */
double cross_entropy_fwd(const bf16 *logits, const int64_t *targets, float *lse, int64_t rows, int64_t vocab,
                         int64_t ignore) {
    double total = 0.0;
    for (int64_t i = 0; i < rows; i++) {
        const bf16 *row = logits + i * vocab;
        float mx = -INFINITY, sum = 0.0f;
#pragma omp simd reduction(max : mx)
        for (int64_t j = 0; j < vocab; j++) mx = bf2f(row[j]) > mx ? bf2f(row[j]) : mx;
#pragma omp simd reduction(+ : sum)
        for (int64_t j = 0; j < vocab; j++) sum += exp_f(bf2f(row[j]) - mx);
        lse[i] = mx + logf(sum);
        if (targets[i] != ignore) total += (double)(lse[i] - bf2f(row[targets[i]]));
    }
    return total;
}

/* grad = bf16(coef (softmax - onehot)); rows with the ignored target get zeros. */
void cross_entropy_bwd(const bf16 *logits, const int64_t *targets, const float *lse, bf16 *grad, int64_t rows,
                       int64_t vocab, int64_t ignore, float coef) {
    for (int64_t i = 0; i < rows; i++) {
        const bf16 *row = logits + i * vocab;
        bf16 *g = grad + i * vocab;
        float c = targets[i] == ignore ? 0.0f : coef, l = lse[i];
#pragma omp simd
        for (int64_t j = 0; j < vocab; j++) g[j] = f2bf(c * exp_f(bf2f(row[j]) - l));
        if (targets[i] != ignore) g[targets[i]] = f2bf(c * (exp_f(bf2f(row[targets[i]]) - l) - 1.0f));
    }
}
