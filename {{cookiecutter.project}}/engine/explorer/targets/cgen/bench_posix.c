/* POSIX benchmark of a generated model: the JSON-lines board protocol on stdout.
 *
 *   bench INPUTS.bin [REPEATS] [--raw]
 *
 * INPUTS.bin holds N * MODEL_INPUT_SIZE little-endian float32 values. For each input the model
 * runs REPEATS times (default 1); the result line carries the outputs (%.9g) and the median
 * wall time of the runs (clock_gettime(CLOCK_MONOTONIC)). With --raw the inputs are raw samples
 * and each run includes the on-device pre-processing (preprocess_invoke).
 */
#define _POSIX_C_SOURCE 199309L

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model.h"

static float input[MODEL_INPUT_SIZE];
#if MODEL_PREPROCESS
static float prepared[MODEL_INPUT_SIZE];
#endif
static float output[MODEL_OUTPUT_SIZE];
static unsigned char raw[4 * MODEL_INPUT_SIZE];

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + (long long)ts.tv_nsec;
}

static int by_value(const void *a, const void *b)
{
    const long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

static int fail(const char *message)
{
    printf("{\"event\":\"error\",\"message\":\"%s\"}\n", message);
    return 1;
}

int main(int argc, char **argv)
{
    FILE *file;
    long long *times;
    int repeats = 1, count = 0, raw_inputs = 0, i, r;
    if (argc < 2)
        return fail("usage: bench INPUTS.bin [REPEATS] [--raw]");
    if (argc > 2)
        repeats = atoi(argv[2]);
    if (argc > 3 && strcmp(argv[3], "--raw") == 0)
        raw_inputs = 1;
#if !MODEL_PREPROCESS
    if (raw_inputs)
        return fail("this model has no on-device pre-processing (--raw)");
#endif
    if (repeats < 1)
        return fail("REPEATS must be at least 1");
    file = fopen(argv[1], "rb");
    if (file == NULL)
        return fail("cannot open the inputs file");
    times = (long long *)malloc(sizeof(long long) * (size_t)repeats);
    if (times == NULL)
        return fail("out of memory");
    printf("{\"event\":\"ready\",\"input_size\":%d,\"output_size\":%d,\"arena_bytes\":%d,\"weight_bytes\":%d,"
           "\"dtype\":\"%s\"}\n", MODEL_INPUT_SIZE, MODEL_OUTPUT_SIZE, MODEL_ARENA_BYTES, MODEL_WEIGHT_BYTES,
           MODEL_DTYPE_INT8 ? "int8" : "float32");
    fflush(stdout);
    for (;;) {
        size_t got = fread(raw, 1, sizeof raw, file);
        if (got == 0)
            break;
        if (got != sizeof raw)
            return fail("the inputs file ends inside an input");
        for (i = 0; i < MODEL_INPUT_SIZE; ++i) {
            const unsigned char *p = raw + 4 * i;
            uint32_t word = (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
            memcpy(&input[i], &word, sizeof input[i]);
        }
        for (r = 0; r < repeats; ++r) {
            long long start = now_ns();
            const float *model_input = input;
#if MODEL_PREPROCESS
            if (raw_inputs) {
                if (preprocess_invoke(input, prepared) != 0)
                    return fail("preprocess_invoke failed");
                model_input = prepared;
            }
#endif
            if (model_invoke(model_input, output) != 0)
                return fail("model_invoke failed");
            times[r] = now_ns() - start;
        }
        qsort(times, (size_t)repeats, sizeof times[0], by_value);
        printf("{\"event\":\"result\",\"index\":%d,\"output\":[", count);
        for (i = 0; i < MODEL_OUTPUT_SIZE; ++i) {
            if (isfinite(output[i]))
                printf(i ? ",%.9g" : "%.9g", (double)output[i]);
            else
                printf(i ? ",null" : "null");
        }
        printf("],\"time_ns\":%lld}\n", times[repeats / 2]);
        fflush(stdout);
        ++count;
    }
    fclose(file);
    free(times);
    printf("{\"event\":\"done\",\"count\":%d}\n", count);
    return 0;
}
