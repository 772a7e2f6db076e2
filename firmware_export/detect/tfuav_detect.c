/*
 * tfuav_detect.c -- decoding of a tfuav detector's int8 output; see tfuav_detect.h.
 * Plain C99; also compiles as C++.
 */
#include "tfuav_detect.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Flattened (y, x, class) indices must fit in 31 bits. */
#define TFUAV_DETECT_MAX_INDEX 0x7FFFFFFFul

static int tfuav_detect_config_ok(const tfuav_detect_config *c)
{
    unsigned long cells;
    if (c->height < 1 || c->width < 1 || c->num_classes < 1 || c->stride < 1 || c->top_k < 1) {
        return 0;
    }
    if (!(c->scale > 0.0f)) { /* also rejects NaN */
        return 0;
    }
    if ((unsigned long)c->width > TFUAV_DETECT_MAX_INDEX / (unsigned long)c->height) {
        return 0;
    }
    cells = (unsigned long)c->height * (unsigned long)c->width;
    if ((unsigned long)c->num_classes + 4ul > TFUAV_DETECT_MAX_INDEX / cells) {
        return 0;
    }
    return (unsigned long)c->stride <= TFUAV_DETECT_MAX_INDEX / (unsigned long)c->width &&
           (unsigned long)c->stride <= TFUAV_DETECT_MAX_INDEX / (unsigned long)c->height;
}

int tfuav_detect_min_q(const tfuav_detect_config *config)
{
    int q;
    for (q = -128; q <= 127; ++q) {
        if ((float)(q - config->zero_point) * config->scale >= config->score_threshold) {
            return q;
        }
    }
    return 128;
}

/* 1 if value v at (y, x) of class channel c is >= all its neighbours in the grid. */
static int tfuav_detect_is_peak(const tfuav_detect_config *cfg, const int8_t *output, int y,
                                int x, int c, int v)
{
    const size_t depth = (size_t)cfg->num_classes + 4u;
    const int y0 = y > 0 ? y - 1 : 0;
    const int y1 = y < cfg->height - 1 ? y + 1 : y;
    const int x0 = x > 0 ? x - 1 : 0;
    const int x1 = x < cfg->width - 1 ? x + 1 : x;
    int ny;
    int nx;
    for (ny = y0; ny <= y1; ++ny) {
        const int8_t *row = output + (size_t)ny * (size_t)cfg->width * depth + (size_t)c;
        for (nx = x0; nx <= x1; ++nx) {
            if (row[(size_t)nx * depth] > v) {
                return 0;
            }
        }
    }
    return 1;
}

/* Candidates, best first: work[2 i] = flattened (y, x, class) index, work[2 i + 1] = the
 * int8 score as a biased value (q + 128). */
static void tfuav_detect_insert(uint32_t *work, int *count, int top_k, uint32_t index, int v)
{
    const uint32_t biased = (uint32_t)(v + 128);
    int at = *count;
    int i;
    /* Visited in increasing index order: an equal score ranks after the ones already in. */
    while (at > 0 && work[2 * (at - 1) + 1] < biased) {
        --at;
    }
    if (at >= top_k) {
        return;
    }
    i = *count < top_k ? *count : top_k - 1;
    for (; i > at; --i) {
        work[2 * i] = work[2 * (i - 1)];
        work[2 * i + 1] = work[2 * (i - 1) + 1];
    }
    work[2 * at] = index;
    work[2 * at + 1] = biased;
    if (*count < top_k) {
        ++*count;
    }
}

static float tfuav_detect_clip(float v, float hi)
{
    if (v < 0.0f) {
        return 0.0f;
    }
    return v > hi ? hi : v;
}

static float tfuav_detect_real(const tfuav_detect_config *cfg, int q)
{
    return (float)(q - cfg->zero_point) * cfg->scale;
}

/* The box of candidate `index`, in the operation order numpy's decoder uses. */
static void tfuav_detect_box_of(const tfuav_detect_config *cfg, const int8_t *output,
                                uint32_t index, tfuav_detect_box *box)
{
    const uint32_t classes = (uint32_t)cfg->num_classes;
    const uint32_t cell = index / classes;
    const int x = (int)(cell % (uint32_t)cfg->width);
    const int y = (int)(cell / (uint32_t)cfg->width);
    const int8_t *v = output + (size_t)cell * ((size_t)classes + 4u);
    const float stride = (float)cfg->stride;
    const float image_w = (float)(cfg->width * cfg->stride);
    const float image_h = (float)(cfg->height * cfg->stride);
    const float size_w = tfuav_detect_real(cfg, v[classes]) * (float)cfg->width;
    const float size_h = tfuav_detect_real(cfg, v[classes + 1u]) * (float)cfg->height;
    const float cx = ((float)x + tfuav_detect_real(cfg, v[classes + 2u])) * stride;
    const float cy = ((float)y + tfuav_detect_real(cfg, v[classes + 3u])) * stride;
    const float half_w = size_w * stride * 0.5f;
    const float half_h = size_h * stride * 0.5f;
    const float x0 = tfuav_detect_clip(cx - half_w, image_w);
    const float y0 = tfuav_detect_clip(cy - half_h, image_h);
    const float x1 = tfuav_detect_clip(cx + half_w, image_w);
    const float y1 = tfuav_detect_clip(cy + half_h, image_h);
    box->x = x0;
    box->y = y0;
    box->w = x1 - x0;
    box->h = y1 - y0;
    box->score = tfuav_detect_real(cfg, v[index % classes]);
    box->class_id = (int)(index % classes);
}

int tfuav_detect_decode(const tfuav_detect_config *config, const int8_t *output,
                        uint32_t *work, size_t work_words, tfuav_detect_box *boxes)
{
    const size_t depth = (size_t)config->num_classes + 4u;
    int min_q;
    int count = 0;
    int y;
    int x;
    int c;
    int i;
    uint32_t index = 0;

    if (!tfuav_detect_config_ok(config)) {
        return TFUAV_DETECT_ERROR_CONFIG;
    }
    if (work_words < TFUAV_DETECT_WORK_WORDS(config->top_k)) {
        return TFUAV_DETECT_ERROR_WORK;
    }
    min_q = tfuav_detect_min_q(config);
    for (y = 0; y < config->height; ++y) {
        for (x = 0; x < config->width; ++x) {
            const int8_t *cell = output + ((size_t)y * (size_t)config->width + (size_t)x) * depth;
            for (c = 0; c < config->num_classes; ++c, ++index) {
                const int v = cell[c];
                /* A full list only takes a strictly better score (equal ones rank later). */
                const int floor = count == config->top_k
                                      ? (int)work[2 * (count - 1) + 1] - 128 + 1
                                      : min_q;
                if (v >= floor && v >= min_q && tfuav_detect_is_peak(config, output, y, x, c, v)) {
                    tfuav_detect_insert(work, &count, config->top_k, index, v);
                }
            }
        }
    }
    for (i = 0; i < count; ++i) {
        tfuav_detect_box_of(config, output, work[2 * i], &boxes[i]);
    }
    return count;
}

#ifdef __cplusplus
} /* extern "C" */
#endif
