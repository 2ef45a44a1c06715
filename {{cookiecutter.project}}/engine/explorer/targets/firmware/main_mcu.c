/* The board side of the serial protocol, for any board that implements board.h.
 *
 * Host -> board: ASCII lines ending in '\n' ('\r' is ignored):
 *   HELLO          answered with the ready line (the board never speaks first: a USB CDC or
 *                  pty link drops what is written before the host opens it)
 *   RUN <n>        the next n inputs form one run; the done line follows the n-th result
 *   I <base64>     one input: MODEL_INPUT_SIZE float32 values as their little-endian bytes in
 *                  base64, so inputs arrive bit-exact and every frame ends at a newline (a torn
 *                  frame is reported and the next line starts clean)
 * Board -> host: the JSON lines of explorer.targets.protocol:
 *   {"event":"ready","input_size":..,"output_size":..,"arena_bytes":..,"weight_bytes":..,
 *    "board":..,"cost":<cost field>}
 *   {"event":"result","index":i,"output":[...],"<cost field>":n}   (non-finite outputs: null)
 *   {"event":"done","count":n}
 *   {"event":"error","message":"..."}
 * The cost is what model_invoke alone costs: the same measurement around an empty function is
 * subtracted. Outputs are printed with 9 significant digits, enough to round-trip any float32.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "board.h"
#include "model.h"

#ifndef MODEL_DTYPE_INT8
#define MODEL_DTYPE_INT8 0
#endif

#define INPUT_BYTES (4L * MODEL_INPUT_SIZE)

typedef int (*invoke_fn)(const float *, float *);

static float input[MODEL_INPUT_SIZE];
static float output[MODEL_OUTPUT_SIZE];

static int nothing(const float *x, float *y)
{
    (void)x;
    (void)y;
    return 0;
}

/* Called through volatile pointers so the model and the empty function are reached by the same
 * instructions and neither is inlined into the measurement. */
static invoke_fn volatile invoke_model = model_invoke;
static invoke_fn volatile invoke_nothing = nothing;

static void put(const char *s)
{
    board_write(s, (unsigned)strlen(s));
}

static void put_u64(uint64_t v)
{
    char buf[21];
    int n = 0;
    do {
        buf[sizeof buf - 1 - n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    board_write(buf + sizeof buf - n, (unsigned)n);
}

/* 9 significant digits, like %.9g, without printf: d is scaled into [1e8, 1e9) in double
 * arithmetic (relative error < 1e-14, far below the 3e-8 half-ulp of a float32). */
static void put_float(float f)
{
    char buf[32], digits[10];
    double d = f;
    uint32_t m;
    int e = 0, n = 0, nd, exp10, i;
    if (!isfinite(f)) {
        put("null");
        return;
    }
    if (signbit(f)) {
        buf[n++] = '-';
        d = -d;
    }
    if (d == 0.0) { /* "-0.0" keeps its sign through JSON, "-0" would not */
        board_write(buf, (unsigned)n);
        put("0.0");
        return;
    }
    while (d >= 1e9) {
        d /= 10.0;
        ++e;
    }
    while (d < 1e8) {
        d *= 10.0;
        --e;
    }
    m = (uint32_t)(d + 0.5);
    if (m >= 1000000000u) {
        m /= 10u;
        ++e;
    }
    for (i = 8; i >= 0; --i) {
        digits[i] = (char)('0' + m % 10u);
        m /= 10u;
    }
    for (nd = 9; nd > 1 && digits[nd - 1] == '0'; --nd)
        ;
    exp10 = e + 8;
    if (exp10 >= -5 && exp10 < 9) {
        if (exp10 >= 0) {
            for (i = 0; i <= exp10; ++i)
                buf[n++] = i < nd ? digits[i] : '0';
            if (nd > exp10 + 1) {
                buf[n++] = '.';
                for (i = exp10 + 1; i < nd; ++i)
                    buf[n++] = digits[i];
            }
        } else {
            buf[n++] = '0';
            buf[n++] = '.';
            for (i = -1; i > exp10; --i)
                buf[n++] = '0';
            for (i = 0; i < nd; ++i)
                buf[n++] = digits[i];
        }
    } else {
        buf[n++] = digits[0];
        if (nd > 1) {
            buf[n++] = '.';
            for (i = 1; i < nd; ++i)
                buf[n++] = digits[i];
        }
        buf[n++] = 'e';
        buf[n++] = exp10 < 0 ? '-' : '+';
        if (exp10 < 0)
            exp10 = -exp10;
        buf[n++] = (char)('0' + exp10 / 10);
        buf[n++] = (char)('0' + exp10 % 10);
    }
    board_write(buf, (unsigned)n);
}

static void error_line(const char *message, long number)
{
    put("{\"event\":\"error\",\"message\":\"");
    put(message);
    if (number >= 0)
        put_u64((uint64_t)number);
    put("\"}\n");
    board_flush();
}

static void ready_line(void)
{
    put("{\"event\":\"ready\",\"input_size\":");
    put_u64(MODEL_INPUT_SIZE);
    put(",\"output_size\":");
    put_u64(MODEL_OUTPUT_SIZE);
    put(",\"arena_bytes\":");
    put_u64(MODEL_ARENA_BYTES);
    put(",\"weight_bytes\":");
    put_u64(MODEL_WEIGHT_BYTES);
    put(MODEL_DTYPE_INT8 ? ",\"dtype\":\"int8\"" : ",\"dtype\":\"float32\"");
    put(",\"board\":\"");
    put(board_name);
    put("\",\"cost\":\"");
    put(board_cost_field);
    put("\",\"protocol\":1}\n");
    board_flush();
}

/* Not inlined: the model and the empty function are measured by the very same instructions. */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static uint64_t measure(invoke_fn volatile *fn, int *status)
{
    uint64_t before, after;
    before = board_now();
    *status = (*fn)(input, output);
    after = board_now();
    return board_cost(before, after);
}

static int base64_value(int c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* The rest of an input line (base64), decoded as it streams into `input`: no line buffer, so
 * inputs of any size fit. Returns the number of bytes decoded, or -1 for a foreign character
 * or more bytes than the model's input. */
static long read_input(int *last)
{
    long count = 0;
    int bad = 0, nbits = 0, c, v;
    uint32_t bits = 0, word = 0;
    while ((c = board_getc()) >= 0 && c != '\n') {
        if (c == '\r' || c == '=')
            continue;
        v = base64_value(c);
        if (v < 0) {
            bad = 1;
            continue;
        }
        bits = (bits << 6) | (uint32_t)v;
        nbits += 6;
        if (nbits < 8)
            continue;
        nbits -= 8;
        if (count >= INPUT_BYTES) {
            bad = 1;
            continue;
        }
        /* byte k of a float is bits 8k..8k+7 of its little-endian word */
        word |= ((bits >> nbits) & 0xFFu) << (8 * (count % 4));
        bits &= (1u << nbits) - 1u;
        if (count % 4 == 3) {
            memcpy(&input[count / 4], &word, sizeof word);
            word = 0;
        }
        ++count;
    }
    *last = c;
    return bad ? -1 : count;
}

static int skip_line(int c)
{
    while (c >= 0 && c != '\n')
        c = board_getc();
    return c;
}

int main(void)
{
    const char *broken = board_init();
    uint64_t overhead = 0, cost, base;
    long expected = -1, index = 0, n, got;
    int c, status, len;
    char word[8];
    if (broken == NULL) {
        measure(&invoke_nothing, &status); /* warm the path once */
        overhead = measure(&invoke_nothing, &status);
    }
    for (;;) {
        c = board_getc();
        if (c < 0)
            break;
        if (c == '\n' || c == '\r' || c == ' ')
            continue;
        for (len = 0; c >= 0 && c != ' ' && c != '\n' && c != '\r'; c = board_getc())
            word[len < 7 ? len++ : 7] = (char)c;
        word[len] = '\0';
        if (len == 1 && word[0] == 'I') {
            if (c != ' ') {
                c = skip_line(c);
                error_line("an input line is 'I <base64>'", -1);
            } else if ((got = read_input(&c)) != INPUT_BYTES) {
                error_line(got < 0 ? "input frame has a foreign character or too many bytes"
                                   : "input frame too short: bytes ", got);
            } else if (broken != NULL) {
                error_line(broken, -1);
            } else if (index >= expected) {
                error_line("input outside a RUN", -1);
            } else {
                cost = measure(&invoke_model, &status);
                if (status != 0) {
                    error_line("model_invoke failed with status ", status < 0 ? -status : status);
                    expected = -1;
                    continue;
                }
                put("{\"event\":\"result\",\"index\":");
                put_u64((uint64_t)index);
                put(",\"output\":[");
                for (n = 0; n < MODEL_OUTPUT_SIZE; ++n) {
                    if (n)
                        put(",");
                    put_float(output[n]);
                }
                put("],\"");
                put(board_cost_field);
                put("\":");
                put_u64(cost > overhead ? cost - overhead : 0);
                put("}\n");
                board_flush();
                if (++index == expected) {
                    put("{\"event\":\"done\",\"count\":");
                    put_u64((uint64_t)index);
                    put("}\n");
                    board_flush();
                    expected = -1;
                }
            }
        } else if (strcmp(word, "HELLO") == 0) {
            c = skip_line(c);
            if (broken != NULL)
                error_line(broken, -1);
            else
                ready_line();
        } else if (strcmp(word, "RUN") == 0) {
            for (base = 0, n = 0; c == ' '; c = board_getc())
                ;
            for (; c >= '0' && c <= '9' && base < 100000000u; c = board_getc(), ++n)
                base = base * 10u + (uint64_t)(c - '0');
            while (c == '\r' || c == ' ')
                c = board_getc();
            if (n == 0 || (c >= 0 && c != '\n')) {
                c = skip_line(c);
                error_line("RUN needs a count below 100000000", -1);
                continue;
            }
            expected = (long)base;
            index = 0;
            if (expected == 0) {
                put("{\"event\":\"done\",\"count\":0}\n");
                board_flush();
                expected = -1;
            }
        } else {
            c = skip_line(c);
            error_line("unknown command (HELLO, RUN <n>, I <base64>)", -1);
        }
        if (c < 0)
            break;
    }
    board_flush();
    return 0;
}
