using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Lockstep.Backends.Managed.Kernels;

/// <summary>x·y + addend in one rounding, for float or double lanes (Vector512/Vector256.FusedMultiplyAdd are not generic).</summary>
internal static class VectorFma
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<T> Fma<T>(Vector512<T> x, Vector512<T> y, Vector512<T> addend) where T : unmanaged
    {
        if (typeof(T) == typeof(float)) return Vector512.FusedMultiplyAdd(x.AsSingle(), y.AsSingle(), addend.AsSingle()).As<float, T>();
        return Vector512.FusedMultiplyAdd(x.AsDouble(), y.AsDouble(), addend.AsDouble()).As<double, T>();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<T> Fma<T>(Vector256<T> x, Vector256<T> y, Vector256<T> addend) where T : unmanaged
    {
        if (typeof(T) == typeof(float)) return Vector256.FusedMultiplyAdd(x.AsSingle(), y.AsSingle(), addend.AsSingle()).As<float, T>();
        return Vector256.FusedMultiplyAdd(x.AsDouble(), y.AsDouble(), addend.AsDouble()).As<double, T>();
    }
}

/// <summary>
/// The vector operations of the kernels written once for several widths (TensorPrimitives' pattern: a tiny struct per
/// width, one generic driver): the JIT compiles the driver once per struct, the struct's operations inlined, so the
/// code is the hand-written Vector512 or Vector256 loop.
/// </summary>
internal interface IVectorLanes<TSelf, T> where TSelf : struct where T : unmanaged
{
    static abstract int Count { get; }
    static abstract TSelf Create(T value);
    static abstract TSelf Load(ref T source, int offset);
    /// <summary>v[k] = source[2k]: the even elements of two consecutive vectors.</summary>
    static abstract TSelf LoadEven(ref T source);
    static abstract void Store(TSelf x, ref T destination, int offset);
    static abstract TSelf Add(TSelf x, TSelf y);
    static abstract TSelf Multiply(TSelf x, TSelf y);
    /// <summary>x·y + addend in one rounding.</summary>
    static abstract TSelf Fma(TSelf x, TSelf y, TSelf addend);
    static abstract TSelf Divide(TSelf x, TSelf y);
    static abstract TSelf Sqrt(TSelf x);
    /// <summary>IEEE 754:2019 maximum: NaN propagates, max(−0, +0) = +0.</summary>
    static abstract TSelf Max(TSelf x, TSelf y);
    /// <summary>All ones in the lanes where x &gt; y (none where either is NaN).</summary>
    static abstract TSelf GreaterThan(TSelf x, TSelf y);
    static abstract TSelf And(TSelf x, TSelf y);
    /// <summary>All ones in the lanes where x &gt; y or x is NaN (a max that NaN wins).</summary>
    static abstract TSelf GreaterOrNaN(TSelf x, TSelf y);
    static abstract TSelf Select(TSelf mask, TSelf x, TSelf y);
    static abstract T Element(TSelf x, int index);
}

internal readonly struct Lanes512<T>(Vector512<T> v) : IVectorLanes<Lanes512<T>, T> where T : unmanaged
{
    private readonly Vector512<T> _v = v;
    public static int Count => Vector512<T>.Count;
    public static Lanes512<T> Create(T value) => new(Vector512.Create(value));
    public static Lanes512<T> Load(ref T source, int offset) => new(Vector512.LoadUnsafe(ref source, (nuint)offset));
    public static void Store(Lanes512<T> x, ref T destination, int offset) => x._v.StoreUnsafe(ref destination, (nuint)offset);
    public static Lanes512<T> Add(Lanes512<T> x, Lanes512<T> y) => new(x._v + y._v);
    public static Lanes512<T> Multiply(Lanes512<T> x, Lanes512<T> y) => new(x._v * y._v);
    public static Lanes512<T> Fma(Lanes512<T> x, Lanes512<T> y, Lanes512<T> addend) => new(VectorFma.Fma(x._v, y._v, addend._v));
    public static Lanes512<T> Divide(Lanes512<T> x, Lanes512<T> y) => new(x._v / y._v);
    public static Lanes512<T> Sqrt(Lanes512<T> x) => new(Vector512.Sqrt(x._v));
    public static Lanes512<T> Max(Lanes512<T> x, Lanes512<T> y) => new(Vector512.Max(x._v, y._v));
    public static Lanes512<T> GreaterThan(Lanes512<T> x, Lanes512<T> y) => new(Vector512.GreaterThan(x._v, y._v));
    public static Lanes512<T> And(Lanes512<T> x, Lanes512<T> y) => new(x._v & y._v);
    public static Lanes512<T> GreaterOrNaN(Lanes512<T> x, Lanes512<T> y) => new(Vector512.GreaterThan(x._v, y._v) | ~Vector512.Equals(x._v, x._v));
    public static Lanes512<T> Select(Lanes512<T> mask, Lanes512<T> x, Lanes512<T> y) => new(Vector512.ConditionalSelect(mask._v, x._v, y._v));
    public static T Element(Lanes512<T> x, int index) => x._v.GetElement(index);

    public static Lanes512<T> LoadEven(ref T source)
    {
        var a = Vector512.LoadUnsafe(ref source);
        var b = Vector512.LoadUnsafe(ref source, (nuint)Vector512<T>.Count);
        if (typeof(T) == typeof(float))
        {
            var even = Vector512.Create(0, 2, 4, 6, 8, 10, 12, 14, 0, 2, 4, 6, 8, 10, 12, 14);
            return new(Vector512.Create(Vector512.Shuffle(a.As<T, float>(), even).GetLower(),
                Vector512.Shuffle(b.As<T, float>(), even).GetLower()).As<float, T>());
        }
        var evenD = Vector512.Create(0L, 2, 4, 6, 0, 2, 4, 6);
        return new(Vector512.Create(Vector512.Shuffle(a.As<T, double>(), evenD).GetLower(),
            Vector512.Shuffle(b.As<T, double>(), evenD).GetLower()).As<double, T>());
    }
}

internal readonly struct Lanes256<T>(Vector256<T> v) : IVectorLanes<Lanes256<T>, T> where T : unmanaged
{
    private readonly Vector256<T> _v = v;
    public static int Count => Vector256<T>.Count;
    public static Lanes256<T> Create(T value) => new(Vector256.Create(value));
    public static Lanes256<T> Load(ref T source, int offset) => new(Vector256.LoadUnsafe(ref source, (nuint)offset));
    public static void Store(Lanes256<T> x, ref T destination, int offset) => x._v.StoreUnsafe(ref destination, (nuint)offset);
    public static Lanes256<T> Add(Lanes256<T> x, Lanes256<T> y) => new(x._v + y._v);
    public static Lanes256<T> Multiply(Lanes256<T> x, Lanes256<T> y) => new(x._v * y._v);
    public static Lanes256<T> Fma(Lanes256<T> x, Lanes256<T> y, Lanes256<T> addend) => new(VectorFma.Fma(x._v, y._v, addend._v));
    public static Lanes256<T> Divide(Lanes256<T> x, Lanes256<T> y) => new(x._v / y._v);
    public static Lanes256<T> Sqrt(Lanes256<T> x) => new(Vector256.Sqrt(x._v));
    public static Lanes256<T> Max(Lanes256<T> x, Lanes256<T> y) => new(Vector256.Max(x._v, y._v));
    public static Lanes256<T> GreaterThan(Lanes256<T> x, Lanes256<T> y) => new(Vector256.GreaterThan(x._v, y._v));
    public static Lanes256<T> And(Lanes256<T> x, Lanes256<T> y) => new(x._v & y._v);
    public static Lanes256<T> GreaterOrNaN(Lanes256<T> x, Lanes256<T> y) => new(Vector256.GreaterThan(x._v, y._v) | ~Vector256.Equals(x._v, x._v));
    public static Lanes256<T> Select(Lanes256<T> mask, Lanes256<T> x, Lanes256<T> y) => new(Vector256.ConditionalSelect(mask._v, x._v, y._v));
    public static T Element(Lanes256<T> x, int index) => x._v.GetElement(index);

    public static Lanes256<T> LoadEven(ref T source)
    {
        var a = Vector256.LoadUnsafe(ref source);
        var b = Vector256.LoadUnsafe(ref source, (nuint)Vector256<T>.Count);
        if (typeof(T) == typeof(float))
        {
            var even = Vector256.Create(0, 2, 4, 6, 0, 2, 4, 6);
            return new(Vector256.Create(Vector256.Shuffle(a.As<T, float>(), even).GetLower(),
                Vector256.Shuffle(b.As<T, float>(), even).GetLower()).As<float, T>());
        }
        var evenD = Vector256.Create(0L, 2, 0, 2);
        return new(Vector256.Create(Vector256.Shuffle(a.As<T, double>(), evenD).GetLower(),
            Vector256.Shuffle(b.As<T, double>(), evenD).GetLower()).As<double, T>());
    }
}
