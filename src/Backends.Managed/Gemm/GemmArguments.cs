using System.Numerics;
using System.Runtime.InteropServices;

namespace Lockstep.Backends.Managed.Gemm;

/// <summary>Argument checks for <see cref="IGemmProvider"/>, done in managed code so that no native call sees a bad length.</summary>
public static class GemmArguments
{
    /// <summary>
    /// Throws unless M, N, K ≥ 0, each leading dimension is at least its row length, and each span holds the rows it
    /// must (the last row need not be padded to the leading dimension). Returns false when there is nothing to multiply
    /// (M = 0 or N = 0), true otherwise.
    /// </summary>
    public static bool Check<T>(bool transA, bool transB, int m, int n, int k, int aLength, int lda, int bLength, int ldb,
        int cLength, int ldc)
    {
        // Messages are built only on failure: a product's checks allocate nothing.
        string op = typeof(T) == typeof(float) ? "gemm<Single>" : typeof(T) == typeof(double) ? "gemm<Double>" : $"gemm<{typeof(T).Name}>";
        if (m < 0 || n < 0 || k < 0) throw new ArgumentException($"{op}: M, N, K must be ≥ 0, got M={m} N={n} K={k}");
        // A is stored [M × K] (or [K × M] when transposed); likewise B [K × N] (or [N × K]); C is [M × N].
        (int aRows, int aCols) = transA ? (k, m) : (m, k);
        (int bRows, int bCols) = transB ? (n, k) : (k, n);
        Operand(op, "A", transA, aRows, aCols, aLength, lda);
        Operand(op, "B", transB, bRows, bCols, bLength, ldb);
        Operand(op, "C", false, m, n, cLength, ldc);
        return m > 0 && n > 0;
    }

    private static void Operand(string op, string name, bool trans, int rows, int cols, int length, int ld)
    {
        if (ld < Math.Max(1, cols)) throw new ArgumentException($"{op}: ld{char.ToLowerInvariant(name[0])} = {ld} is less than the row length of {Stored()}");
        long needed = rows == 0 || cols == 0 ? 0 : (long)(rows - 1) * ld + cols;
        if (length < needed)
        {
            throw new ArgumentException(
                $"{op}: {Stored()} with ld{char.ToLowerInvariant(name[0])} = {ld} needs {needed} elements, the span has {length}");
        }

        string Stored() => $"{name}{(trans ? "ᵀ" : "")} stored [{rows} × {cols}]";
    }

    /// <summary>C = beta·C over the [M × N] block: what a product with K = 0 leaves (beta = 0 clears, as BLAS).</summary>
    public static void ScaleOnly<T>(int m, int n, T beta, Span<T> c, int ldc) where T : unmanaged, INumberBase<T>
    {
        for (int i = 0; i < m; i++)
        {
            var row = c.Slice(i * ldc, n);
            if (T.IsZero(beta)) row.Clear();
            else for (int j = 0; j < n; j++) row[j] = beta * row[j];
        }
    }
}

/// <summary>Generic entry point: dispatches a product over <typeparamref name="T"/> to Sgemm or Dgemm.</summary>
public static class GemmExtensions
{
    /// <summary>C = alpha·op(A)·op(B) + beta·C, row-major (see <see cref="IGemmProvider"/>).</summary>
    public static void Gemm<T>(this IGemmProvider provider, bool transA, bool transB, int m, int n, int k, T alpha,
        ReadOnlySpan<T> a, int lda, ReadOnlySpan<T> b, int ldb, T beta, Span<T> c, int ldc)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        ArgumentNullException.ThrowIfNull(provider);
        if (typeof(T) == typeof(float))
        {
            provider.Sgemm(transA, transB, m, n, k, float.CreateTruncating(alpha), MemoryMarshal.Cast<T, float>(a), lda,
                MemoryMarshal.Cast<T, float>(b), ldb, float.CreateTruncating(beta), MemoryMarshal.Cast<T, float>(c), ldc);
        }
        else if (typeof(T) == typeof(double))
        {
            provider.Dgemm(transA, transB, m, n, k, double.CreateTruncating(alpha), MemoryMarshal.Cast<T, double>(a), lda,
                MemoryMarshal.Cast<T, double>(b), ldb, double.CreateTruncating(beta), MemoryMarshal.Cast<T, double>(c), ldc);
        }
        else
        {
            throw new NotSupportedException($"gemm: no product for element type {typeof(T).Name}; use float or double");
        }
    }
}
