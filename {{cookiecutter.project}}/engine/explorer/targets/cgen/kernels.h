/* Kernels of the explorer C99 model generator (float32 and int8).
 *
 * Every tensor is a flat row-major array: [C, L] is read as [C, 1, L] by the 2-D kernels, so one
 * convolution and one pooling kernel serve 1-D and 2-D models. The kernels allocate nothing and
 * print nothing; they need only <math.h> (expf, tanhf, erff) and <stdint.h>.
 */
#ifndef EXPLORER_KERNELS_H
#define EXPLORER_KERNELS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum k_activation {
    K_ACT_IDENTITY = 0,
    K_ACT_RELU = 1,
    K_ACT_RELU6 = 2,
    K_ACT_SIGMOID = 3,
    K_ACT_TANH = 4,
    K_ACT_HARDSWISH = 5,
    K_ACT_GELU = 6
};

/* A convolution: input [c, h, w], weights [oc, c / groups, kh, kw], output [oc, oh, ow].
 * ph/pw zero padding before the first row/column; the output size fixes the padding after. */
typedef struct {
    int c, h, w, oc, kh, kw, sh, sw, ph, pw, oh, ow, groups, act;
} k_conv_t;

/* A pooling window over [c, h, w] -> [c, oh, ow] (no padding, floor mode, as in PyTorch). */
typedef struct {
    int c, h, w, kh, kw, sh, sw, oh, ow;
} k_pool_t;

/* One direction of a recurrent layer over x [steps, features] -> y [steps, y_stride] (the
 * caller offsets y by the direction's columns). Weights and biases in PyTorch's layout and gate
 * order (LSTM i f g o, GRU r z n). Zero initial state; h(t-1) is read back from y. */
typedef struct {
    int steps, features, hidden, y_stride;
} k_rnn_t;

float k_activate(float x, int act);

/* ---------------------------------------------------------------- float32 */
void k_copy_f32(const float *x, float *y, int n);
void k_conv_f32(const float *x, const float *w, const float *b, float *y, const k_conv_t *s);
void k_linear_f32(const float *x, const float *w, const float *b, float *y, int n_in, int n_out, int act);
void k_maxpool_f32(const float *x, float *y, const k_pool_t *s);
void k_avgpool_f32(const float *x, float *y, const k_pool_t *s);
/* y[o, i] = mean over k of x[o, k, i] for x [outer, n, inner] */
void k_mean_f32(const float *x, float *y, int outer, int n, int inner);
/* in place: x[o, ch, i] = x[o, ch, i] * scale[ch] + shift[ch] for x [outer, c, inner] */
void k_affine_f32(float *x, const float *scale, const float *shift, int outer, int c, int inner);
void k_activation_f32(float *x, int n, int act);
/* in place: each of the outer rows of x [outer, n] to zero mean and unit variance, then * w + b */
void k_layernorm_f32(float *x, int outer, int n, const float *w, const float *b, float eps);
/* y [cols, rows] = transpose of x [rows, cols] */
void k_transpose_f32(const float *x, float *y, int rows, int cols);

/* scratch: 5 * hidden floats */
void k_lstm_f32(const float *x, float *y, const k_rnn_t *s, const float *w_ih, const float *w_hh, const float *b_ih,
                const float *b_hh, int reverse, float *scratch);
/* scratch: 6 * hidden floats */
void k_gru_f32(const float *x, float *y, const k_rnn_t *s, const float *w_ih, const float *w_hh, const float *b_ih,
               const float *b_hh, int reverse, float *scratch);

/* in place, per channel of x [channels, length] from a zero state: a cascade of second-order
 * sections sos [sections][6] = b0 b1 b2 a0 a1 a2 (a0 = 1), as scipy.signal.sosfilt */
void k_sos_f32(float *x, int channels, int length, const float *sos, int sections);

/* ---------------------------------------------------------------- int8
 * Symmetric quantisation (zero point 0): real = q * scale. Weights are per output channel,
 * accumulators int32; acc_scale[oc] = input scale * weight scale[oc], out_inv = 1 / output scale. */
int8_t k_saturate_s8(float v);
void k_quantize_s8(const float *x, int8_t *y, int n, float inv_scale);
void k_dequantize_s8(const int8_t *x, float *y, int n, float scale);
void k_copy_s8(const int8_t *x, int8_t *y, int n);
void k_conv_s8(const int8_t *x, const int8_t *w, const int32_t *b, int8_t *y, const k_conv_t *s,
               const float *acc_scale, float out_inv);
void k_linear_s8(const int8_t *x, const int8_t *w, const int32_t *b, int8_t *y, int n_in, int n_out, int act,
                 const float *acc_scale, float out_inv);
void k_maxpool_s8(const int8_t *x, int8_t *y, const k_pool_t *s);
void k_avgpool_s8(const int8_t *x, int8_t *y, const k_pool_t *s);
void k_mean_s8(const int8_t *x, int8_t *y, int outer, int n, int inner);
/* in place: q = saturate(q * mul[ch] + add[ch]) (batch norm and the rescaling folded together) */
void k_affine_s8(int8_t *x, const float *mul, const float *add, int outer, int c, int inner);
/* in place: q = lut[q + 128] (any element-wise function with its rescaling, as a table) */
void k_lut_s8(int8_t *x, int n, const int8_t *lut);
/* in place: layer norm computed in float on the dequantised row, requantised with out_inv */
void k_layernorm_s8(int8_t *x, int outer, int n, const float *w, const float *b, float eps, float in_scale,
                    float out_inv);
void k_transpose_s8(const int8_t *x, int8_t *y, int rows, int cols);

#ifdef __cplusplus
}
#endif

#endif
