using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Lockstep.Backends.Managed.Kernels;

/// <summary>RELU and its backward, elementwise, on the widest vector the machine has.</summary>
internal static class Activations
{
    // y = max(0, x); NaN stays NaN (TensorPrimitives.Max is IEEE 754:2019 maximum: NaN propagates, max(−0, +0) = +0)
    public static void Relu<T>(ReadOnlySpan<T> x, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T> =>
        TensorPrimitives.Max(x, T.Zero, y);

    // dx = dy where x > 0, else 0 (also where x is NaN: the comparison is false)
    public static void ReluBackward<T>(ReadOnlySpan<T> dy, ReadOnlySpan<T> x, Span<T> dx) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int n = x.Length, i = 0;
        ref T rdy = ref MemoryMarshal.GetReference(dy);
        ref T rx = ref MemoryMarshal.GetReference(x);
        ref T rdx = ref MemoryMarshal.GetReference(dx);
        if (Vector512.IsHardwareAccelerated && n >= Vector512<T>.Count)
        {
            for (; i <= n - Vector512<T>.Count; i += Vector512<T>.Count)
            {
                var mask = Vector512.GreaterThan(Vector512.LoadUnsafe(ref rx, (nuint)i), Vector512<T>.Zero);
                (Vector512.LoadUnsafe(ref rdy, (nuint)i) & mask).StoreUnsafe(ref rdx, (nuint)i);
            }
        }
        else if (Vector256.IsHardwareAccelerated && n >= Vector256<T>.Count)
        {
            for (; i <= n - Vector256<T>.Count; i += Vector256<T>.Count)
            {
                var mask = Vector256.GreaterThan(Vector256.LoadUnsafe(ref rx, (nuint)i), Vector256<T>.Zero);
                (Vector256.LoadUnsafe(ref rdy, (nuint)i) & mask).StoreUnsafe(ref rdx, (nuint)i);
            }
        }
        for (; i < n; i++) Unsafe.Add(ref rdx, i) = Unsafe.Add(ref rx, i) > T.Zero ? Unsafe.Add(ref rdy, i) : T.Zero;
    }
}
