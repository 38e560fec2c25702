//!fragment
// The 32 multiply-adds of one k (the even one of a pair, or the odd K tail): acc += ak*_0 · bk*_0.
// Shared by matmul_16x8.wgsl and matmul_16x8_subgroup.wgsl (textual include: the kernels compile
// to the same code as when it was written out in each).
    acc0_0 += ak0_0 * bk0_0; acc0_1 += ak0_0 * bk1_0;
    acc1_0 += ak1_0 * bk0_0; acc1_1 += ak1_0 * bk1_0;
    acc2_0 += ak2_0 * bk0_0; acc2_1 += ak2_0 * bk1_0;
    acc3_0 += ak3_0 * bk0_0; acc3_1 += ak3_0 * bk1_0;
    acc4_0 += ak4_0 * bk0_0; acc4_1 += ak4_0 * bk1_0;
    acc5_0 += ak5_0 * bk0_0; acc5_1 += ak5_0 * bk1_0;
    acc6_0 += ak6_0 * bk0_0; acc6_1 += ak6_0 * bk1_0;
    acc7_0 += ak7_0 * bk0_0; acc7_1 += ak7_0 * bk1_0;
    acc8_0 += ak8_0 * bk0_0; acc8_1 += ak8_0 * bk1_0;
    acc9_0 += ak9_0 * bk0_0; acc9_1 += ak9_0 * bk1_0;
    acc10_0 += ak10_0 * bk0_0; acc10_1 += ak10_0 * bk1_0;
    acc11_0 += ak11_0 * bk0_0; acc11_1 += ak11_0 * bk1_0;
    acc12_0 += ak12_0 * bk0_0; acc12_1 += ak12_0 * bk1_0;
    acc13_0 += ak13_0 * bk0_0; acc13_1 += ak13_0 * bk1_0;
    acc14_0 += ak14_0 * bk0_0; acc14_1 += ak14_0 * bk1_0;
    acc15_0 += ak15_0 * bk0_0; acc15_1 += ak15_0 * bk1_0;
