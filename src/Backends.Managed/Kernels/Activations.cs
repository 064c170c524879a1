using System.Numerics;
using System.Numerics.Tensors;

namespace Lockstep.Backends.Managed.Kernels;

/// <summary>RELU and its backward, elementwise.</summary>
internal static class Activations
{
    // y = max(0, x); NaN stays NaN (TensorPrimitives.Max is IEEE 754:2019 maximum: NaN propagates, max(−0, +0) = +0)
    public static void Relu<T>(ReadOnlySpan<T> x, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T> =>
        TensorPrimitives.Max(x, T.Zero, y);

    // dx = dy where x > 0, else 0 (also where x is NaN)
    public static void ReluBackward<T>(ReadOnlySpan<T> dy, ReadOnlySpan<T> x, Span<T> dx) where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int i = 0; i < x.Length; i++) dx[i] = x[i] > T.Zero ? dy[i] : T.Zero;
    }
}
