//!fragment
// One k of the kernel that includes it (the first of a pair, or the odd K tail): 2 loads of B,
// 4 loads of A and 16 broadcasts, then the 32 multiply-adds into the accumulators.
    let bk0_0 = vec4<f32>(b[b0 + kb], b[b1 + kb], b[b2 + kb], b[b3 + kb]);
    let bk1_0 = vec4<f32>(b[b4 + kb], b[b5 + kb], b[b6 + kb], b[b7 + kb]);
    let v0_0 = a[a0 + ka];
    let v1_0 = a[a1 + ka];
    let v2_0 = a[a2 + ka];
    let v3_0 = a[a3 + ka];
    let ak0_0 = subgroupBroadcast(v0_0, 0u);
    let ak1_0 = subgroupBroadcast(v0_0, 1u);
    let ak2_0 = subgroupBroadcast(v0_0, 2u);
    let ak3_0 = subgroupBroadcast(v0_0, 3u);
    let ak4_0 = subgroupBroadcast(v1_0, 0u);
    let ak5_0 = subgroupBroadcast(v1_0, 1u);
    let ak6_0 = subgroupBroadcast(v1_0, 2u);
    let ak7_0 = subgroupBroadcast(v1_0, 3u);
    let ak8_0 = subgroupBroadcast(v2_0, 0u);
    let ak9_0 = subgroupBroadcast(v2_0, 1u);
    let ak10_0 = subgroupBroadcast(v2_0, 2u);
    let ak11_0 = subgroupBroadcast(v2_0, 3u);
    let ak12_0 = subgroupBroadcast(v3_0, 0u);
    let ak13_0 = subgroupBroadcast(v3_0, 1u);
    let ak14_0 = subgroupBroadcast(v3_0, 2u);
    let ak15_0 = subgroupBroadcast(v3_0, 3u);
    //!include matmul_16x8_fma_even.wgsl
