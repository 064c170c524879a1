using System.Numerics;
using System.Runtime.Intrinsics;
using Lockstep.Backends.Managed.Kernels;
using Xunit;

namespace Lockstep.Tests;

/// <summary>Winograd's products on packed weights (Kernels/Winograd.Packed.cs), against the sum they define.</summary>
public sealed class PackedProductTests
{
    /// <summary>
    /// Whole blocks of 14 columns and a last narrower one (1, 13, 15, 98 columns), one and several blocks of rows, a
    /// depth of 1 and an odd one, B and M with rows wider than the product: every element is the in-order sum
    /// Σ_d fma(a[r, d], b[d, j], ·) from zero, bit for bit, and what lies beyond the product in M is left alone.
    /// </summary>
    [Theory]
    [InlineData(1, 1, 1)]
    [InlineData(2, 37, 13)]
    [InlineData(1, 64, 14)]
    [InlineData(3, 5, 15)]
    [InlineData(2, 200, 98)]
    public void PackedProduct_IsTheInOrderFusedSum(int blocks, int depth, int cols)
    {
        Check<float>(blocks, depth, cols, MathF.FusedMultiplyAdd, byFilters: false);
        Check<double>(blocks, depth, cols, Math.FusedMultiplyAdd, byFilters: false);
    }

    /// <summary>
    /// The input gradient's form: A given packed the other way (the forward's transform, [depth / PackRows][rows]
    /// [PackRows]) and repacked panel by panel inside, with the next panel prefetched — the same in-order sums, bit for
    /// bit, over one and several panels and a last narrower block of columns.
    /// </summary>
    [Theory]
    [InlineData(1, 2, 14)]
    [InlineData(3, 4, 15)]
    [InlineData(2, 1, 98)]
    public void PackedProduct_FromTheForwardsPacking_IsTheInOrderFusedSum(int blocks, int depthBlocks, int cols)
    {
        Check<float>(blocks, depthBlocks * Winograd.PackRows<float>(), cols, MathF.FusedMultiplyAdd, byFilters: true);
        Check<double>(blocks, depthBlocks * Winograd.PackRows<double>(), cols, Math.FusedMultiplyAdd, byFilters: true);
    }

    /// <summary>
    /// The weight gradient's products M = D · Vᵀ in both forms: whole, one position (PackedProductTransposed, both
    /// operands packed inside), and packed first (PackWeightOperands) then block by block (PackedWeightBlock, as the
    /// fused weight gradient runs them). Filters in whole blocks of 14 and not (14, 13, 37, 64), one and several blocks
    /// of channels, depths short, odd and whole vectors, D and V with rows wider than the depth: every element the
    /// in-order sum Σ_t fma(d[k, t], v[c, t], ·) from zero, bit for bit; nothing past the product written in M, and
    /// zeros in a block for the filters past the last.
    /// </summary>
    [Theory]
    [InlineData(14, 1, 5)]
    [InlineData(13, 2, 98)]
    [InlineData(37, 3, 1)]
    [InlineData(64, 2, 16)]
    public void PackedWeightProducts_AreTheInOrderFusedSums(int filters, int blocks, int depth)
    {
        CheckWeightProducts<float>(filters, blocks, depth, MathF.FusedMultiplyAdd);
        CheckWeightProducts<double>(filters, blocks, depth, Math.FusedMultiplyAdd);
    }

    private static void CheckWeightProducts<T>(int filters, int blocks, int depth, Func<T, T, T, T> fma) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (!Vector512.IsHardwareAccelerated)
        {
            Assert.False(Winograd.PacksWeights<T>(512), "packed weight products chosen without AVX-512");
            return;
        }
        int pack = Winograd.PackRows<T>(), channels = blocks * pack, ldd = depth + 2, ldv = depth + 7, ldm = channels + 3, columns = 14;
        var rng = new Random(filters * 31 + channels + depth);
        T Draw() => T.CreateTruncating(rng.NextDouble() * 2 - 1);
        var d = new T[(filters - 1) * ldd + depth];
        var v = new T[(channels - 1) * ldv + depth];
        for (int i = 0; i < d.Length; i++) d[i] = Draw();
        for (int i = 0; i < v.Length; i++) v[i] = Draw();
        T Sum(int k, int c)
        {
            T sum = T.Zero;
            if (k < filters) for (int t = 0; t < depth; t++) sum = fma(d[k * ldd + t], v[c * ldv + t], sum);
            return sum;
        }
        string Where(int k, int c) => $"{typeof(T).Name} filters {filters} channels {channels} depth {depth}: M[{k}, {c}]";

        var m = new T[filters * ldm];
        var sentinel = T.CreateTruncating(-777);
        m.AsSpan().Fill(sentinel);
        Winograd.PackedProductTransposed<T>(d, filters, ldd, v, channels, ldv, depth, m, ldm);
        for (int k = 0; k < filters; k++)
        for (int c = 0; c < ldm; c++)
        {
            T actual = m[k * ldm + c];
            if (c >= channels) Assert.True(actual == sentinel, $"{typeof(T).Name}: M[{k}, {c}] past the product's {channels} columns was written");
            else Assert.True(actual.Equals(Sum(k, c)), $"{Where(k, c)} = {actual}, the in-order sum {Sum(k, c)}");
        }

        var packed = new T[Winograd.PackedWeightOperandsElements<T>(filters, channels, depth)];
        packed.AsSpan().Fill(sentinel);   // what the packing leaves unwritten must never be read
        Winograd.PackWeightOperands<T>(d, filters, ldd, v, channels, ldv, depth, packed);
        var block = new T[pack * columns];
        for (int kb = 0; kb < Winograd.FilterBlocks(filters); kb++)
        for (int c0 = 0; c0 < channels; c0 += pack)
        {
            Winograd.PackedWeightBlock<T>(packed, filters, channels, depth, kb, c0, block);
            for (int j = 0; j < columns; j++)
            for (int i = 0; i < pack; i++)
            {
                int k = kb * columns + j, c = c0 + i;
                T actual = block[j * pack + i];
                Assert.True(actual.Equals(Sum(k, c)), $"{Where(k, c)} in block ({kb}, {c0}) = {actual}, the in-order sum {Sum(k, c)}");
            }
        }
    }

    /// <summary>Operands shorter than the sizes say, blocks that are not there: an error before the kernel reads.</summary>
    [Fact]
    public void PackedProduct_ThrowsForOperandsShorterThanTheSizes()
    {
        var e = Assert.Throws<ArgumentException>(() => Winograd.PackedProduct<float>(new float[32 * 4], 32, 4, new float[3 * 14 + 13], 14, 14, new float[32 * 14], 14));
        Assert.Contains("32 × 14 × 4", e.Message);
        Assert.Throws<ArgumentException>(() => Winograd.PackedProduct<float>(new float[31 * 4], 31, 4, new float[4 * 14], 14, 14, new float[31 * 14], 14));
        // The weight gradient's: V one element short; a block of channels past the last, or not on a block's start; a filter block past the last.
        int packed = Winograd.PackedWeightOperandsElements<float>(20, 32, 5);
        e = Assert.Throws<ArgumentException>(() => Winograd.PackWeightOperands<float>(new float[20 * 5], 20, 5, new float[32 * 5 - 1], 32, 5, 5, new float[packed]));
        Assert.Contains("20 filters × 32 channels", e.Message);
        Assert.Throws<ArgumentException>(() => Winograd.PackedWeightBlock<float>(new float[packed], 20, 32, 5, 0, 32, new float[32 * 14]));
        Assert.Throws<ArgumentException>(() => Winograd.PackedWeightBlock<float>(new float[packed], 20, 32, 5, 0, 16, new float[32 * 14]));
        Assert.Throws<ArgumentException>(() => Winograd.PackedWeightBlock<float>(new float[packed], 20, 32, 5, 2, 0, new float[32 * 14]));
        Assert.Throws<ArgumentException>(() => Winograd.PackedWeightBlock<float>(new float[packed - 1], 20, 32, 5, 0, 0, new float[32 * 14]));
    }

    private static void Check<T>(int blocks, int depth, int cols, Func<T, T, T, T> fma, bool byFilters) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (!Vector512.IsHardwareAccelerated)
        {
            // Without AVX-512 no layer may take the packed products (the layer tests cover the other path).
            Assert.False(Winograd.PacksForward<T>(3, 2, 512, 512, 14, 14) || Winograd.PacksInputGradient<T>(3, 2, 512, 512, 14, 14),
                "packed products chosen without AVX-512");
            return;
        }
        int pack = Winograd.PackRows<T>(), rows = blocks * pack, ldb = cols + 3, ldm = cols + 5;
        var rng = new Random(rows * 131 + depth * 7 + cols);
        T Draw() => T.CreateTruncating(rng.NextDouble() * 2 - 1);
        var a = new T[rows, depth];
        for (int r = 0; r < rows; r++)
        for (int d = 0; d < depth; d++) a[r, d] = Draw();
        var packed = new T[rows * depth];
        for (int r = 0; r < rows; r++)
        for (int d = 0; d < depth; d++)
            packed[byFilters ? (d / pack * rows + r) * pack + d % pack : (r / pack) * depth * pack + d * pack + r % pack] = a[r, d];
        var b = new T[(depth - 1) * ldb + cols];   // no slack past the last row
        for (int i = 0; i < b.Length; i++) b[i] = Draw();
        var m = new T[rows * ldm];
        var sentinel = T.CreateTruncating(12345);
        m.AsSpan().Fill(sentinel);

        Winograd.PackedProduct<T>(packed, rows, depth, b, ldb, cols, m, ldm, byFilters);

        for (int r = 0; r < rows; r++)
        for (int j = 0; j < ldm; j++)
        {
            T actual = m[r * ldm + j];
            if (j >= cols)
            {
                Assert.True(actual == sentinel, $"{typeof(T).Name}: M[{r}, {j}] past the product's {cols} columns was written");
                continue;
            }
            T sum = T.Zero;
            for (int d = 0; d < depth; d++) sum = fma(a[r, d], b[d * ldb + j], sum);
            Assert.True(actual.Equals(sum), $"{typeof(T).Name} rows {rows} depth {depth} cols {cols}: M[{r}, {j}] = {actual}, the in-order sum {sum}");
        }
    }
}
