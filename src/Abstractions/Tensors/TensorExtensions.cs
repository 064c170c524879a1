namespace Lockstep;

public static class TensorExtensions
{
    /// <summary>Copies the tensor to a new host array of its own element type.</summary>
    public static T[] ToArray<T>(this ITensor tensor) where T : unmanaged
    {
        ArgumentNullException.ThrowIfNull(tensor);
        var data = new T[checked((int)tensor.Shape.Count)];
        tensor.Backend.Download<T>(tensor, data);
        return data;
    }

    /// <summary>Copies a floating tensor to the host as doubles (float32 widened exactly).</summary>
    public static double[] ToDoubles(this ITensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        return tensor.DType switch
        {
            DType.Float64 => tensor.ToArray<double>(),
            DType.Float32 => Array.ConvertAll(tensor.ToArray<float>(), v => (double)v),
            DType.Int64 => Array.ConvertAll(tensor.ToArray<long>(), v => (double)v),
            _ => throw new NotSupportedException(tensor.DType.ToString()),
        };
    }

    /// <summary>Uploads host doubles as a tensor of <paramref name="dtype"/> (rounded to nearest for float32).</summary>
    public static ITensor Upload(this IBackend backend, ReadOnlySpan<double> data, Shape shape, DType dtype)
    {
        ArgumentNullException.ThrowIfNull(backend);
        return dtype switch
        {
            DType.Float64 => backend.Upload(data, shape),
            DType.Float32 => backend.Upload<float>(ToSingles(data), shape),
            _ => throw new ArgumentException($"Upload: dtype {dtype} is not a floating type"),
        };
    }

    private static float[] ToSingles(ReadOnlySpan<double> data)
    {
        var result = new float[data.Length];
        for (int i = 0; i < data.Length; i++) result[i] = (float)data[i];
        return result;
    }

    /// <summary>Copies a tensor from its backend to <paramref name="target"/> through the host.</summary>
    public static ITensor CopyTo(this ITensor tensor, IBackend target)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        ArgumentNullException.ThrowIfNull(target);
        return tensor.DType switch
        {
            DType.Float32 => target.Upload<float>(tensor.ToArray<float>(), tensor.Shape),
            DType.Float64 => target.Upload<double>(tensor.ToArray<double>(), tensor.Shape),
            DType.Int64 => target.Upload<long>(tensor.ToArray<long>(), tensor.Shape),
            _ => throw new NotSupportedException(tensor.DType.ToString()),
        };
    }
}
