namespace Lockstep;

/// <summary>Element type of a tensor. Every backend supports both floating types;
/// <see cref="Int64"/> holds indices only (max-pool switches).</summary>
public enum DType
{
    Float32,
    Float64,
    Int64,
}

public static class DTypes
{
    /// <summary>The dtype whose host element type is <typeparamref name="T"/>.</summary>
    public static DType Of<T>() where T : unmanaged =>
        typeof(T) == typeof(float) ? DType.Float32
        : typeof(T) == typeof(double) ? DType.Float64
        : typeof(T) == typeof(long) ? DType.Int64
        : throw new ArgumentException($"no Lockstep dtype has host type {typeof(T).Name}; use float, double or long");

    public static int SizeOf(this DType dtype) => dtype switch
    {
        DType.Float32 => 4,
        DType.Float64 or DType.Int64 => 8,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, null),
    };

    public static bool IsFloating(this DType dtype) => dtype is DType.Float32 or DType.Float64;

    /// <summary>Parses "f32", "float32", "Float32", "f64", "float64", "double", "float".</summary>
    public static DType Parse(string text) => text.Trim().ToLowerInvariant() switch
    {
        "f32" or "float32" or "float" or "single" => DType.Float32,
        "f64" or "float64" or "double" => DType.Float64,
        _ => throw new ArgumentException($"unknown dtype '{text}': expected f32 or f64 (Float32, Float64)"),
    };
}
