//!fragment
// One k of the kernel that includes it (the first of a pair, or the odd K tail): 2 loads of B,
// 16 loads of A, then the 32 multiply-adds into the accumulators.
    let bk0_0 = vec4<f32>(b[b0 + kb], b[b1 + kb], b[b2 + kb], b[b3 + kb]);
    let bk1_0 = vec4<f32>(b[b4 + kb], b[b5 + kb], b[b6 + kb], b[b7 + kb]);
    let ak0_0 = a[a0 + ka];
    let ak1_0 = a[a1 + ka];
    let ak2_0 = a[a2 + ka];
    let ak3_0 = a[a3 + ka];
    let ak4_0 = a[a4 + ka];
    let ak5_0 = a[a5 + ka];
    let ak6_0 = a[a6 + ka];
    let ak7_0 = a[a7 + ka];
    let ak8_0 = a[a8 + ka];
    let ak9_0 = a[a9 + ka];
    let ak10_0 = a[a10 + ka];
    let ak11_0 = a[a11 + ka];
    let ak12_0 = a[a12 + ka];
    let ak13_0 = a[a13 + ka];
    let ak14_0 = a[a14 + ka];
    let ak15_0 = a[a15 + ka];
    //!include matmul_16x8_fma_even.wgsl
