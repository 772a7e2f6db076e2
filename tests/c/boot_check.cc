// Boots the exported platform layer on an emulated Cortex-M and reports CRC-32s of the
// exported arrays as the target sees them, plus a write/read-back of the .arena region.
#include <stdint.h>
#include <stdio.h>

#include "golden_data.h"
#include "model_config.h"
#include "model_data.h"
#include "port.h"

alignas(16) static uint8_t arena[MODEL_ARENA_BYTES] __attribute__((section(".arena")));

static uint32_t Crc32(const unsigned char* p, unsigned long n) {
  uint32_t crc = 0xFFFFFFFFu;
  for (unsigned long i = 0; i < n; ++i) {
    crc ^= p[i];
    for (int b = 0; b < 8; ++b) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

int main(void) {
  static char line[128];
  tfuav_port_init();
  snprintf(line, sizeof line, "model %u %08lx\n", MODEL_DATA_SIZE,
           (unsigned long)Crc32(MODEL_DATA, MODEL_DATA_SIZE));
  tfuav_port_write(line);
  snprintf(line, sizeof line, "golden_input %08lx\n",
           (unsigned long)Crc32(&g_golden_input[0][0], GOLDEN_COUNT * MODEL_INPUT_BYTES));
  tfuav_port_write(line);
  snprintf(line, sizeof line, "golden_output %08lx\n",
           (unsigned long)Crc32(&g_golden_output[0][0], GOLDEN_COUNT * MODEL_OUTPUT_BYTES));
  tfuav_port_write(line);
  for (unsigned long i = 0; i < sizeof arena; ++i) arena[i] = (uint8_t)(i * 7u + 3u);
  unsigned long bad = 0;
  for (unsigned long i = 0; i < sizeof arena; ++i) bad += arena[i] != (uint8_t)(i * 7u + 3u);
  snprintf(line, sizeof line, "arena %lu %lu %lu\n", (unsigned long)sizeof arena, bad,
           (unsigned long)((uintptr_t)arena % 16u));
  tfuav_port_write(line);
  tfuav_port_exit(0);
}
