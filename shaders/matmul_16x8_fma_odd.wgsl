//!fragment
// The 32 multiply-adds of the second k of a pair: acc += ak*_1 · bk*_1.
// Shared by matmul_16x8.wgsl and matmul_16x8_subgroup.wgsl (textual include: the kernels compile
// to the same code as when it was written out in each).
    acc0_0 += ak0_1 * bk0_1; acc0_1 += ak0_1 * bk1_1;
    acc1_0 += ak1_1 * bk0_1; acc1_1 += ak1_1 * bk1_1;
    acc2_0 += ak2_1 * bk0_1; acc2_1 += ak2_1 * bk1_1;
    acc3_0 += ak3_1 * bk0_1; acc3_1 += ak3_1 * bk1_1;
    acc4_0 += ak4_1 * bk0_1; acc4_1 += ak4_1 * bk1_1;
    acc5_0 += ak5_1 * bk0_1; acc5_1 += ak5_1 * bk1_1;
    acc6_0 += ak6_1 * bk0_1; acc6_1 += ak6_1 * bk1_1;
    acc7_0 += ak7_1 * bk0_1; acc7_1 += ak7_1 * bk1_1;
    acc8_0 += ak8_1 * bk0_1; acc8_1 += ak8_1 * bk1_1;
    acc9_0 += ak9_1 * bk0_1; acc9_1 += ak9_1 * bk1_1;
    acc10_0 += ak10_1 * bk0_1; acc10_1 += ak10_1 * bk1_1;
    acc11_0 += ak11_1 * bk0_1; acc11_1 += ak11_1 * bk1_1;
    acc12_0 += ak12_1 * bk0_1; acc12_1 += ak12_1 * bk1_1;
    acc13_0 += ak13_1 * bk0_1; acc13_1 += ak13_1 * bk1_1;
    acc14_0 += ak14_1 * bk0_1; acc14_1 += ak14_1 * bk1_1;
    acc15_0 += ak15_1 * bk0_1; acc15_1 += ak15_1 * bk1_1;
