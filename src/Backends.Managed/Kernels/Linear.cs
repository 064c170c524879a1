using System.Numerics;
using System.Numerics.Tensors;
using Lockstep.Backends.Managed.Gemm;

namespace Lockstep.Backends.Managed.Kernels;

// N batch, in = features per item (C·H·W for a rank-4 input), out = output features.

/// <summary>
/// FC: a matrix product plus bias, and its backward. Each product reads the operands where they lie, the transposes
/// told to the BLAS (W is [out × in] as libtorch keeps it): no operand is copied or transposed in memory.
/// </summary>
internal static class Linear
{
    // y [N × out] = x [N × in] · Wᵀ [in × out] + b
    public static void Forward<T>(IGemmProvider gemm, ReadOnlySpan<T> x, ReadOnlySpan<T> w, ReadOnlySpan<T> b,
        int n, int inputs, int outputs, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T>
    {
        gemm.Gemm(false, true, n, outputs, inputs, T.One, x, inputs, w, inputs, T.Zero, y, outputs);
        if (b.IsEmpty) return;
        for (int i = 0; i < n; i++)
        {
            var row = y.Slice(i * outputs, outputs);
            TensorPrimitives.Add(row, b, row);
        }
    }

    // dx [N × in] = dy · W;  dw [out × in] = dyᵀ · x;  db[o] = Σ_n dy[n, o]
    public static void Backward<T>(IGemmProvider gemm, ReadOnlySpan<T> dy, ReadOnlySpan<T> x, ReadOnlySpan<T> w,
        int n, int inputs, int outputs, Span<T> dx, Span<T> dw, Span<T> db) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (!dx.IsEmpty) gemm.Gemm(false, false, n, inputs, outputs, T.One, dy, outputs, w, inputs, T.Zero, dx, inputs);
        gemm.Gemm(true, false, outputs, inputs, n, T.One, dy, outputs, x, inputs, T.Zero, dw, inputs);
        db.Clear();
        for (int i = 0; i < n; i++) TensorPrimitives.Add(db, dy.Slice(i * outputs, outputs), db);
    }
}
