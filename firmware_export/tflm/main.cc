// tfuav benchmark harness for TensorFlow Lite Micro.
//
// 1. Sets up the interpreter on the exported model with the exported arena size.
// 2. Runs every golden input and compares the output bytes with the golden output (the
//    bytes TFLM produced on the host): prints PASS or FAIL.
// 3. Times MODEL_BENCH_RUNS invokes with the DWT cycle counter.
// Every result is one JSON line through the port layer (port.h), so a script can read the
// UART or semihosting output.
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <new>

#include "golden_data.h"
#include "model_config.h"
#include "model_data.h"
#include "model_ops.h"
#include "port.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/schema/schema_generated.h"

#ifndef TFUAV_ARENA_SECTION
#define TFUAV_ARENA_SECTION __attribute__((section(".arena")))
#endif

extern "C" uint32_t __stack_limit;  // bottom of the stack (linker script)

namespace {

constexpr uint32_t kStackPaint = 0xA5A5A5A5u;

alignas(16) uint8_t g_arena[MODEL_ARENA_BYTES] TFUAV_ARENA_SECTION;

// Constructed with placement new: under -nostartfiles a static object with a destructor
// does not link (no __dso_handle / atexit), and these must never be destroyed anyway.
alignas(ModelOpResolver) uint8_t g_resolver_storage[sizeof(ModelOpResolver)];
alignas(tflite::MicroInterpreter) uint8_t g_interpreter_storage[sizeof(tflite::MicroInterpreter)];

char g_line[192];

void Emit(const char* line) {
  tfuav_port_write(line);
  tfuav_port_write("\n");
}

[[noreturn]] void Fail(const char* stage, const char* detail) {
  snprintf(g_line, sizeof(g_line), "{\"event\":\"error\",\"stage\":\"%s\",\"detail\":\"%s\"}",
           stage, detail);
  Emit(g_line);
  Emit("FAIL");
  tfuav_port_exit(1);
  for (;;) {
  }
}

// Fills the free stack below the current stack pointer (less 128 bytes of headroom) with a
// pattern; returns where the painting ends. StackDepth() later finds how deep anything called
// since then went. Addresses are handled as integers: the stack is not a C++ object.
__attribute__((noinline)) uintptr_t PaintStack() {
  uintptr_t sp;
  __asm volatile("mov %0, sp" : "=r"(sp));
  const uintptr_t end = (sp - 128u) & ~static_cast<uintptr_t>(3u);
  for (uintptr_t a = reinterpret_cast<uintptr_t>(&__stack_limit); a < end; a += 4u) {
    *reinterpret_cast<volatile uint32_t*>(a) = kStackPaint;
  }
  return end;
}

unsigned long StackDepth(uintptr_t painted_end) {
  uintptr_t a = reinterpret_cast<uintptr_t>(&__stack_limit);
  while (a < painted_end && *reinterpret_cast<volatile uint32_t*>(a) == kStackPaint) a += 4u;
  return static_cast<unsigned long>(painted_end - a);
}

// TFLM reuses the input tensor's memory for later tensors: the input must be written again
// before every Invoke().
void FillInput(tflite::MicroInterpreter* interpreter, const unsigned char* bytes) {
  TfLiteTensor* input = interpreter->input(0);
  memcpy(input->data.raw, bytes, MODEL_INPUT_BYTES);
}

// Output bytes compared with `expected` (all outputs concatenated); returns the number of
// differing bytes and the index of the first one in *first.
int CompareOutputs(tflite::MicroInterpreter* interpreter, const unsigned char* expected,
                   int* first) {
  int mismatches = 0;
  size_t offset = 0;
  *first = -1;
  for (size_t k = 0; k < interpreter->outputs_size(); ++k) {
    const TfLiteTensor* out = interpreter->output(k);
    const unsigned char* got = reinterpret_cast<const unsigned char*>(out->data.raw);
    for (size_t i = 0; i < out->bytes && offset + i < MODEL_OUTPUT_BYTES; ++i) {
      if (got[i] != expected[offset + i]) {
        if (*first < 0) *first = static_cast<int>(offset + i);
        ++mismatches;
      }
    }
    offset += out->bytes;
  }
  if (offset != MODEL_OUTPUT_BYTES) return -1;
  return mismatches;
}

}  // namespace

int main(void) {
  tfuav_port_init();

  const tflite::Model* model = tflite::GetModel(MODEL_DATA);
  if (model->version() != TFLITE_SCHEMA_VERSION) Fail("setup", "schema version mismatch");

  ModelOpResolver* resolver = new (g_resolver_storage) ModelOpResolver();
  if (RegisterModelOps(*resolver) != kTfLiteOk) Fail("setup", "op registration failed");

  tflite::MicroInterpreter* interpreter = new (g_interpreter_storage)
      tflite::MicroInterpreter(model, *resolver, g_arena, MODEL_ARENA_BYTES);
  if (interpreter->AllocateTensors() != kTfLiteOk) Fail("setup", "AllocateTensors failed");
  if (interpreter->input(0)->bytes != MODEL_INPUT_BYTES) Fail("setup", "input size mismatch");

  snprintf(g_line, sizeof(g_line),
           "{\"event\":\"setup\",\"model\":\"%s\",\"target\":\"%s\",\"arena_bytes\":%lu,"
           "\"arena_used_bytes\":%lu}",
           MODEL_NAME, MODEL_TARGET, (unsigned long)MODEL_ARENA_BYTES,
           (unsigned long)interpreter->arena_used_bytes());
  Emit(g_line);

  int failures = 0;
  const uintptr_t painted_end = PaintStack();
  for (int g = 0; g < GOLDEN_COUNT; ++g) {
    FillInput(interpreter, g_golden_input[g]);
    if (interpreter->Invoke() != kTfLiteOk) Fail("golden", "Invoke failed");
    int first = -1;
    const int mismatches = CompareOutputs(interpreter, g_golden_output[g], &first);
    if (mismatches != 0) ++failures;
    snprintf(g_line, sizeof(g_line),
             "{\"event\":\"golden\",\"index\":%d,\"bytes\":%d,\"mismatches\":%d,\"first\":%d}",
             g, MODEL_OUTPUT_BYTES, mismatches, first);
    Emit(g_line);
  }
  Emit(failures == 0 ? "PASS" : "FAIL");
  // Stack Invoke() used below main's frame (the 128 bytes of headroom not included).
  snprintf(g_line, sizeof(g_line), "{\"event\":\"stack\",\"invoke_bytes\":%lu}",
           StackDepth(painted_end));
  Emit(g_line);

  const int have_cycles = tfuav_cycles_available();
  uint32_t total = 0;
  for (int run = 0; run < MODEL_BENCH_RUNS; ++run) {
    FillInput(interpreter, g_golden_input[run % GOLDEN_COUNT]);
    const uint32_t start = tfuav_cycles_now();
    const TfLiteStatus status = interpreter->Invoke();
    const uint32_t cycles = tfuav_cycles_now() - start;
    if (status != kTfLiteOk) Fail("bench", "Invoke failed");
    total += cycles;
    if (have_cycles) {
      snprintf(g_line, sizeof(g_line),
               "{\"event\":\"run\",\"run\":%d,\"cycles\":%lu,\"us\":%lu}", run,
               (unsigned long)cycles, (unsigned long)(cycles / MODEL_CLOCK_MHZ));
    } else {
      snprintf(g_line, sizeof(g_line), "{\"event\":\"run\",\"run\":%d,\"cycles\":null,\"us\":null}",
               run);
    }
    Emit(g_line);
  }
  if (have_cycles) {
    const uint32_t mean = total / MODEL_BENCH_RUNS;
    snprintf(g_line, sizeof(g_line),
             "{\"event\":\"summary\",\"runs\":%d,\"mean_cycles\":%lu,\"mean_us\":%lu,"
             "\"clock_mhz\":%d,\"golden_failures\":%d}",
             MODEL_BENCH_RUNS, (unsigned long)mean, (unsigned long)(mean / MODEL_CLOCK_MHZ),
             MODEL_CLOCK_MHZ, failures);
  } else {
    snprintf(g_line, sizeof(g_line),
             "{\"event\":\"summary\",\"runs\":%d,\"mean_cycles\":null,\"mean_us\":null,"
             "\"clock_mhz\":%d,\"golden_failures\":%d}",
             MODEL_BENCH_RUNS, MODEL_CLOCK_MHZ, failures);
  }
  Emit(g_line);
  tfuav_port_exit(failures == 0 ? 0 : 1);
  return failures == 0 ? 0 : 1;
}
