// <immintrin.h> for the AVX-512 kernels, without GCC 12's false -Wuninitialized: its headers initialise the
// "undefined" vector behind _mm512_cvtepi8_epi32, _mm512_cvtepi32_ps and the like from itself (GCC bug 105593,
// fixed in GCC 13), which is reported at every inlined use. The diagnostic state at the header's lines is what
// counts, so the pragmas wrap the include.
#pragma once
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#else
#include <immintrin.h>
#endif
