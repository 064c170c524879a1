using System.Numerics;
using MathNet.Numerics.Providers.LinearAlgebra;

namespace Lockstep.Backends.Managed.Gemm;

/// <summary>
/// The last resort: Math.NET Numerics' managed provider (about 60× slower than a native BLAS, see PERF-NOTES).
/// It is column-major and takes whole arrays, so each operand is copied to a packed array and the product is
/// computed as Cᵀ = op(B)ᵀ·op(A)ᵀ, whose column-major layout is C's row-major one.
/// </summary>
public sealed class ManagedGemmProvider : IGemmProvider
{
    private readonly ILinearAlgebraProvider _provider;

    public ManagedGemmProvider(int threads)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        _provider = ManagedLinearAlgebraProvider.Instance;
        MathNet.Numerics.Control.MaxDegreeOfParallelism = threads;
        Threads = threads;
        Version = typeof(ManagedLinearAlgebraProvider).Assembly.GetName().Version?.ToString(3) ?? "unknown";
        Details = $"Math.NET Numerics {Version} managed linear algebra provider";
    }

    public string Name => "managed";
    public string Version { get; }
    public string Details { get; }
    public int Threads { get; }

    public void Sgemm(bool transA, bool transB, int m, int n, int k, float alpha, ReadOnlySpan<float> a, int lda,
        ReadOnlySpan<float> b, int ldb, float beta, Span<float> c, int ldc)
    {
        if (!GemmArguments.Check<float>(transA, transB, m, n, k, a.Length, lda, b.Length, ldb, c.Length, ldc)) return;
        if (k == 0) { GemmArguments.ScaleOnly(m, n, beta, c, ldc); return; }
        Multiply(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc,
            (ta, tb, al, pa, ra, ca, pb, rb, cb, be, pc) => _provider.MatrixMultiplyWithUpdate(ta, tb, al, pa, ra, ca, pb, rb, cb, be, pc));
    }

    public void Dgemm(bool transA, bool transB, int m, int n, int k, double alpha, ReadOnlySpan<double> a, int lda,
        ReadOnlySpan<double> b, int ldb, double beta, Span<double> c, int ldc)
    {
        if (!GemmArguments.Check<double>(transA, transB, m, n, k, a.Length, lda, b.Length, ldb, c.Length, ldc)) return;
        if (k == 0) { GemmArguments.ScaleOnly(m, n, beta, c, ldc); return; }
        Multiply(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc,
            (ta, tb, al, pa, ra, ca, pb, rb, cb, be, pc) => _provider.MatrixMultiplyWithUpdate(ta, tb, al, pa, ra, ca, pb, rb, cb, be, pc));
    }

    private delegate void ColumnMajorGemm<T>(Transpose transA, Transpose transB, T alpha, T[] a, int rowsA, int columnsA,
        T[] b, int rowsB, int columnsB, T beta, T[] c);

    // Row-major C [M × N] is column-major Cᵀ [N × M] = op(B)ᵀ·op(A)ᵀ. A row-major operand stored [r × c] reads as a
    // column-major [c × r] matrix, its transpose; so op(B)ᵀ is that matrix as is when B is not transposed, else transposed.
    private static void Multiply<T>(bool transA, bool transB, int m, int n, int k, T alpha, ReadOnlySpan<T> a, int lda,
        ReadOnlySpan<T> b, int ldb, T beta, Span<T> c, int ldc, ColumnMajorGemm<T> gemm) where T : unmanaged, INumberBase<T>
    {
        (int aRows, int aCols) = transA ? (k, m) : (m, k);
        (int bRows, int bCols) = transB ? (n, k) : (k, n);
        T[] packedA = Pack(a, aRows, aCols, lda);
        T[] packedB = Pack(b, bRows, bCols, ldb);
        T[] packedC = T.IsZero(beta) ? new T[m * n] : Pack(c, m, n, ldc);
        gemm(transB ? Transpose.Transpose : Transpose.DontTranspose, transA ? Transpose.Transpose : Transpose.DontTranspose,
            alpha, packedB, bCols, bRows, packedA, aCols, aRows, beta, packedC);
        for (int i = 0; i < m; i++) packedC.AsSpan(i * n, n).CopyTo(c.Slice(i * ldc, n));
    }

    private static T[] Pack<T>(ReadOnlySpan<T> source, int rows, int cols, int ld)
    {
        var packed = new T[rows * cols];
        for (int i = 0; i < rows; i++) source.Slice(i * ld, cols).CopyTo(packed.AsSpan(i * cols, cols));
        return packed;
    }

    public void Dispose() { }

    public override string ToString() => $"managed {Version}, {Threads} threads";
}
