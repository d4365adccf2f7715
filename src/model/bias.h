/* Private to src/model: the bias of a linear layer (Qwen2's q/k/v, Llama's attention_bias),
 * shared by the training forward/backward and decoding. */
#ifndef DISTIL_MODEL_BIAS_H
#define DISTIL_MODEL_BIAS_H

/* out (N,OC) += bias (OC), every row. */
void dl_bias_forward(float *out, const float *bias, int N, int OC);
/* dbias (OC) += column sums of dout (N,OC). Each column is summed over rows in order, so the
 * bits do not depend on the thread count. */
void dl_bias_backward(float *dbias, const float *dout, int N, int OC);

#endif
