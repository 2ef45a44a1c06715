/* Kernels of the explorer C99 model generator; see kernels.h. */
#include "kernels.h"

#include <math.h>

float k_activate(float x, int act)
{
    switch (act) {
    case K_ACT_RELU:
        return x > 0.0f ? x : 0.0f;
    case K_ACT_RELU6:
        return x < 0.0f ? 0.0f : (x > 6.0f ? 6.0f : x);
    case K_ACT_SIGMOID:
        return 1.0f / (1.0f + expf(-x));
    case K_ACT_TANH:
        return tanhf(x);
    case K_ACT_HARDSWISH: {
        float r = x + 3.0f;
        r = r < 0.0f ? 0.0f : (r > 6.0f ? 6.0f : r);
        return x * r / 6.0f;
    }
    case K_ACT_GELU:
        return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
    default:
        return x;
    }
}

/* ---------------------------------------------------------------- float32 */

void k_copy_f32(const float *x, float *y, int n)
{
    int i;
    for (i = 0; i < n; ++i)
        y[i] = x[i];
}

void k_conv_f32(const float *x, const float *w, const float *b, float *y, const k_conv_t *s)
{
    const int cpg = s->c / s->groups, opg = s->oc / s->groups, ksize = s->kh * s->kw;
    int o, oy, ox, ic, ky, kx;
    for (o = 0; o < s->oc; ++o) {
        const float *wo = w + o * cpg * ksize;
        const float *xg = x + (o / opg) * cpg * s->h * s->w;
        for (oy = 0; oy < s->oh; ++oy) {
            for (ox = 0; ox < s->ow; ++ox) {
                float acc = b[o];
                for (ic = 0; ic < cpg; ++ic) {
                    const float *xc = xg + ic * s->h * s->w;
                    const float *wc = wo + ic * ksize;
                    for (ky = 0; ky < s->kh; ++ky) {
                        const int iy = oy * s->sh - s->ph + ky;
                        if (iy < 0 || iy >= s->h)
                            continue;
                        for (kx = 0; kx < s->kw; ++kx) {
                            const int ix = ox * s->sw - s->pw + kx;
                            if (ix >= 0 && ix < s->w)
                                acc += xc[iy * s->w + ix] * wc[ky * s->kw + kx];
                        }
                    }
                }
                y[(o * s->oh + oy) * s->ow + ox] = k_activate(acc, s->act);
            }
        }
    }
}

void k_linear_f32(const float *x, const float *w, const float *b, float *y, int n_in, int n_out, int act)
{
    int o, i;
    for (o = 0; o < n_out; ++o) {
        const float *wo = w + o * n_in;
        float acc = b[o];
        for (i = 0; i < n_in; ++i)
            acc += wo[i] * x[i];
        y[o] = k_activate(acc, act);
    }
}

void k_maxpool_f32(const float *x, float *y, const k_pool_t *s)
{
    int c, oy, ox, ky, kx;
    for (c = 0; c < s->c; ++c) {
        const float *xc = x + c * s->h * s->w;
        for (oy = 0; oy < s->oh; ++oy) {
            for (ox = 0; ox < s->ow; ++ox) {
                const float *xw = xc + oy * s->sh * s->w + ox * s->sw;
                float best = xw[0];
                for (ky = 0; ky < s->kh; ++ky)
                    for (kx = 0; kx < s->kw; ++kx)
                        if (xw[ky * s->w + kx] > best)
                            best = xw[ky * s->w + kx];
                y[(c * s->oh + oy) * s->ow + ox] = best;
            }
        }
    }
}

void k_avgpool_f32(const float *x, float *y, const k_pool_t *s)
{
    const float inv = 1.0f / (float)(s->kh * s->kw);
    int c, oy, ox, ky, kx;
    for (c = 0; c < s->c; ++c) {
        const float *xc = x + c * s->h * s->w;
        for (oy = 0; oy < s->oh; ++oy) {
            for (ox = 0; ox < s->ow; ++ox) {
                const float *xw = xc + oy * s->sh * s->w + ox * s->sw;
                float sum = 0.0f;
                for (ky = 0; ky < s->kh; ++ky)
                    for (kx = 0; kx < s->kw; ++kx)
                        sum += xw[ky * s->w + kx];
                y[(c * s->oh + oy) * s->ow + ox] = sum * inv;
            }
        }
    }
}

void k_mean_f32(const float *x, float *y, int outer, int n, int inner)
{
    int o, k, i;
    for (o = 0; o < outer; ++o) {
        for (i = 0; i < inner; ++i) {
            float sum = 0.0f;
            for (k = 0; k < n; ++k)
                sum += x[(o * n + k) * inner + i];
            y[o * inner + i] = sum / (float)n;
        }
    }
}

void k_affine_f32(float *x, const float *scale, const float *shift, int outer, int c, int inner)
{
    int o, ch, i;
    for (o = 0; o < outer; ++o)
        for (ch = 0; ch < c; ++ch) {
            float *xc = x + (o * c + ch) * inner;
            for (i = 0; i < inner; ++i)
                xc[i] = xc[i] * scale[ch] + shift[ch];
        }
}

void k_activation_f32(float *x, int n, int act)
{
    int i;
    for (i = 0; i < n; ++i)
        x[i] = k_activate(x[i], act);
}

/* mean and 1 / sqrt(variance + eps) of n values read through get(i) (two passes, like PyTorch) */
#define ROW_STATS(get, n, eps, mean, inv_std)                                                                          \
    do {                                                                                                               \
        float sum_ = 0.0f, var_ = 0.0f;                                                                                \
        int k_;                                                                                                        \
        for (k_ = 0; k_ < (n); ++k_)                                                                                   \
            sum_ += get(k_);                                                                                           \
        (mean) = sum_ / (float)(n);                                                                                    \
        for (k_ = 0; k_ < (n); ++k_)                                                                                   \
            var_ += (get(k_) - (mean)) * (get(k_) - (mean));                                                           \
        (inv_std) = 1.0f / sqrtf(var_ / (float)(n) + (eps));                                                           \
    } while (0)

void k_layernorm_f32(float *x, int outer, int n, const float *w, const float *b, float eps)
{
    int o, i;
    for (o = 0; o < outer; ++o) {
        float *row = x + o * n, mean, inv_std;
#define GET_F32(k) row[k]
        ROW_STATS(GET_F32, n, eps, mean, inv_std);
#undef GET_F32
        for (i = 0; i < n; ++i)
            row[i] = (row[i] - mean) * inv_std * w[i] + b[i];
    }
}

void k_transpose_f32(const float *x, float *y, int rows, int cols)
{
    int r, c;
    for (r = 0; r < rows; ++r)
        for (c = 0; c < cols; ++c)
            y[c * rows + r] = x[r * cols + c];
}

static float sigmoid(float x)
{
    return 1.0f / (1.0f + expf(-x));
}

/* out[r] = b[r] + w[r, :] . v for r < rows */
static void affine_rows(const float *w, const float *b, const float *v, float *out, int rows, int cols)
{
    int r, i;
    for (r = 0; r < rows; ++r) {
        const float *wr = w + r * cols;
        float acc = b[r];
        for (i = 0; i < cols; ++i)
            acc += wr[i] * v[i];
        out[r] = acc;
    }
}

void k_lstm_f32(const float *x, float *y, const k_rnn_t *s, const float *w_ih, const float *w_hh, const float *b_ih,
                const float *b_hh, int reverse, float *scratch)
{
    const int h = s->hidden;
    float *c = scratch, *gates = scratch + h;
    int n, j, i;
    for (j = 0; j < h; ++j)
        c[j] = 0.0f;
    for (n = 0; n < s->steps; ++n) {
        const int t = reverse ? s->steps - 1 - n : n;
        const float *hp = n > 0 ? y + (reverse ? t + 1 : t - 1) * s->y_stride : 0;
        float *ht = y + t * s->y_stride;
        affine_rows(w_ih, b_ih, x + t * s->features, gates, 4 * h, s->features);
        for (j = 0; j < 4 * h; ++j) {
            float acc = b_hh[j];
            if (hp)
                for (i = 0; i < h; ++i)
                    acc += w_hh[j * h + i] * hp[i];
            gates[j] += acc;
        }
        for (j = 0; j < h; ++j) {
            const float i_gate = sigmoid(gates[j]), f_gate = sigmoid(gates[h + j]);
            const float g_gate = tanhf(gates[2 * h + j]), o_gate = sigmoid(gates[3 * h + j]);
            c[j] = f_gate * c[j] + i_gate * g_gate;
            ht[j] = o_gate * tanhf(c[j]);
        }
    }
}

void k_gru_f32(const float *x, float *y, const k_rnn_t *s, const float *w_ih, const float *w_hh, const float *b_ih,
               const float *b_hh, int reverse, float *scratch)
{
    const int h = s->hidden;
    float *gi = scratch, *gh = scratch + 3 * h;
    int n, j;
    for (n = 0; n < s->steps; ++n) {
        const int t = reverse ? s->steps - 1 - n : n;
        const float *hp = n > 0 ? y + (reverse ? t + 1 : t - 1) * s->y_stride : 0;
        float *ht = y + t * s->y_stride;
        affine_rows(w_ih, b_ih, x + t * s->features, gi, 3 * h, s->features);
        if (hp)
            affine_rows(w_hh, b_hh, hp, gh, 3 * h, h);
        else
            for (j = 0; j < 3 * h; ++j)
                gh[j] = b_hh[j];
        for (j = 0; j < h; ++j) {
            const float r = sigmoid(gi[j] + gh[j]), z = sigmoid(gi[h + j] + gh[h + j]);
            const float cand = tanhf(gi[2 * h + j] + r * gh[2 * h + j]);
            ht[j] = (1.0f - z) * cand + z * (hp ? hp[j] : 0.0f);
        }
    }
}

void k_sos_f32(float *x, int channels, int length, const float *sos, int sections)
{
    int c, s, t;
    for (c = 0; c < channels; ++c) {
        float *xc = x + c * length;
        for (s = 0; s < sections; ++s) {
            const float *k = sos + 6 * s;
            float z0 = 0.0f, z1 = 0.0f;
            for (t = 0; t < length; ++t) {
                const float in = xc[t], out = k[0] * in + z0;
                z0 = k[1] * in - k[4] * out + z1;
                z1 = k[2] * in - k[5] * out;
                xc[t] = out;
            }
        }
    }
}

/* ---------------------------------------------------------------- int8 */

int8_t k_saturate_s8(float v)
{
    if (v >= 127.0f)
        return 127;
    if (v <= -128.0f)
        return -128;
    return (int8_t)(int32_t)(v >= 0.0f ? v + 0.5f : v - 0.5f);
}

/* round(sum / n) with halves away from zero, in integers */
static int8_t div_round_s8(int32_t sum, int32_t n)
{
    int32_t q = sum >= 0 ? (sum + n / 2) / n : -((-sum + n / 2) / n);
    return (int8_t)(q > 127 ? 127 : (q < -128 ? -128 : q));
}

void k_quantize_s8(const float *x, int8_t *y, int n, float inv_scale)
{
    int i;
    for (i = 0; i < n; ++i)
        y[i] = k_saturate_s8(x[i] * inv_scale);
}

void k_dequantize_s8(const int8_t *x, float *y, int n, float scale)
{
    int i;
    for (i = 0; i < n; ++i)
        y[i] = (float)x[i] * scale;
}

void k_copy_s8(const int8_t *x, int8_t *y, int n)
{
    int i;
    for (i = 0; i < n; ++i)
        y[i] = x[i];
}

static int8_t requantize(int32_t acc, float acc_scale, int act, float out_inv)
{
    float v = (float)acc * acc_scale;
    if (act != K_ACT_IDENTITY)
        v = k_activate(v, act);
    return k_saturate_s8(v * out_inv);
}

void k_conv_s8(const int8_t *x, const int8_t *w, const int32_t *b, int8_t *y, const k_conv_t *s,
               const float *acc_scale, float out_inv)
{
    const int cpg = s->c / s->groups, opg = s->oc / s->groups, ksize = s->kh * s->kw;
    int o, oy, ox, ic, ky, kx;
    for (o = 0; o < s->oc; ++o) {
        const int8_t *wo = w + o * cpg * ksize;
        const int8_t *xg = x + (o / opg) * cpg * s->h * s->w;
        for (oy = 0; oy < s->oh; ++oy) {
            for (ox = 0; ox < s->ow; ++ox) {
                int32_t acc = b[o];
                for (ic = 0; ic < cpg; ++ic) {
                    const int8_t *xc = xg + ic * s->h * s->w;
                    const int8_t *wc = wo + ic * ksize;
                    for (ky = 0; ky < s->kh; ++ky) {
                        const int iy = oy * s->sh - s->ph + ky;
                        if (iy < 0 || iy >= s->h)
                            continue;
                        for (kx = 0; kx < s->kw; ++kx) {
                            const int ix = ox * s->sw - s->pw + kx;
                            if (ix >= 0 && ix < s->w)
                                acc += (int32_t)xc[iy * s->w + ix] * (int32_t)wc[ky * s->kw + kx];
                        }
                    }
                }
                y[(o * s->oh + oy) * s->ow + ox] = requantize(acc, acc_scale[o], s->act, out_inv);
            }
        }
    }
}

void k_linear_s8(const int8_t *x, const int8_t *w, const int32_t *b, int8_t *y, int n_in, int n_out, int act,
                 const float *acc_scale, float out_inv)
{
    int o, i;
    for (o = 0; o < n_out; ++o) {
        const int8_t *wo = w + o * n_in;
        int32_t acc = b[o];
        for (i = 0; i < n_in; ++i)
            acc += (int32_t)wo[i] * (int32_t)x[i];
        y[o] = requantize(acc, acc_scale[o], act, out_inv);
    }
}

void k_maxpool_s8(const int8_t *x, int8_t *y, const k_pool_t *s)
{
    int c, oy, ox, ky, kx;
    for (c = 0; c < s->c; ++c) {
        const int8_t *xc = x + c * s->h * s->w;
        for (oy = 0; oy < s->oh; ++oy) {
            for (ox = 0; ox < s->ow; ++ox) {
                const int8_t *xw = xc + oy * s->sh * s->w + ox * s->sw;
                int8_t best = xw[0];
                for (ky = 0; ky < s->kh; ++ky)
                    for (kx = 0; kx < s->kw; ++kx)
                        if (xw[ky * s->w + kx] > best)
                            best = xw[ky * s->w + kx];
                y[(c * s->oh + oy) * s->ow + ox] = best;
            }
        }
    }
}

void k_avgpool_s8(const int8_t *x, int8_t *y, const k_pool_t *s)
{
    int c, oy, ox, ky, kx;
    for (c = 0; c < s->c; ++c) {
        const int8_t *xc = x + c * s->h * s->w;
        for (oy = 0; oy < s->oh; ++oy) {
            for (ox = 0; ox < s->ow; ++ox) {
                const int8_t *xw = xc + oy * s->sh * s->w + ox * s->sw;
                int32_t sum = 0;
                for (ky = 0; ky < s->kh; ++ky)
                    for (kx = 0; kx < s->kw; ++kx)
                        sum += xw[ky * s->w + kx];
                y[(c * s->oh + oy) * s->ow + ox] = div_round_s8(sum, s->kh * s->kw);
            }
        }
    }
}

void k_mean_s8(const int8_t *x, int8_t *y, int outer, int n, int inner)
{
    int o, k, i;
    for (o = 0; o < outer; ++o) {
        for (i = 0; i < inner; ++i) {
            int32_t sum = 0;
            for (k = 0; k < n; ++k)
                sum += x[(o * n + k) * inner + i];
            y[o * inner + i] = div_round_s8(sum, n);
        }
    }
}

void k_affine_s8(int8_t *x, const float *mul, const float *add, int outer, int c, int inner)
{
    int o, ch, i;
    for (o = 0; o < outer; ++o)
        for (ch = 0; ch < c; ++ch) {
            int8_t *xc = x + (o * c + ch) * inner;
            for (i = 0; i < inner; ++i)
                xc[i] = k_saturate_s8((float)xc[i] * mul[ch] + add[ch]);
        }
}

void k_lut_s8(int8_t *x, int n, const int8_t *lut)
{
    int i;
    for (i = 0; i < n; ++i)
        x[i] = lut[x[i] + 128];
}

void k_layernorm_s8(int8_t *x, int outer, int n, const float *w, const float *b, float eps, float in_scale,
                    float out_inv)
{
    int o, i;
    for (o = 0; o < outer; ++o) {
        int8_t *row = x + o * n;
        float mean, inv_std;
#define GET_S8(k) ((float)row[k] * in_scale)
        ROW_STATS(GET_S8, n, eps, mean, inv_std);
        for (i = 0; i < n; ++i)
            row[i] = k_saturate_s8(((GET_S8(i) - mean) * inv_std * w[i] + b[i]) * out_inv);
#undef GET_S8
    }
}

void k_transpose_s8(const int8_t *x, int8_t *y, int rows, int cols)
{
    int r, c;
    for (r = 0; r < rows; ++r)
        for (c = 0; c < cols; ++c)
            y[c * rows + r] = x[r * cols + c];
}
