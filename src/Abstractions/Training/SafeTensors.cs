using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using Lockstep.Layers;

namespace Lockstep.Training;

/// <summary>A named host tensor as the safetensors format stores it: dtype, shape and the values.</summary>
public sealed record NamedTensor(string Name, DType DType, Shape Shape, double[] Values);

/// <summary>
/// The safetensors format (Hugging Face), which PyTorch reads with <c>safetensors.torch.load_file</c>:
/// 8 bytes, the header's length N as a little-endian unsigned 64-bit integer; N bytes of UTF-8 JSON mapping each
/// tensor's name to <c>{"dtype": "F32"|"F64", "shape": [...], "data_offsets": [begin, end]}</c> (byte offsets into
/// the data that follows, in order, without gaps), padded with spaces to a multiple of 8; then the data,
/// little-endian, row-major. Names are PyTorch's ("conv1.weight", "fc1.bias").
/// </summary>
public static class SafeTensors
{
    public static void Write(Stream stream, IReadOnlyList<NamedTensor> tensors)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(tensors);
        var header = new MemoryStream();
        long offset = 0;
        using (var json = new Utf8JsonWriter(header))
        {
            json.WriteStartObject();
            foreach (var t in tensors)
            {
                if (t.Values.Length != t.Shape.Count) throw new ArgumentException($"{t.Name}: {t.Values.Length} values for shape {t.Shape}");
                long bytes = t.Shape.Count * t.DType.SizeOf();
                json.WriteStartObject(t.Name);
                json.WriteString("dtype", Code(t.DType));
                json.WriteStartArray("shape");
                foreach (int d in t.Shape.Dims) json.WriteNumberValue(d);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + bytes);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += bytes;
            }
            json.WriteEndObject();
        }
        while (header.Length % 8 != 0) header.WriteByte((byte)' ');

        Span<byte> length = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)header.Length);
        stream.Write(length);
        header.Position = 0;
        header.CopyTo(stream);
        foreach (var t in tensors)
        {
            byte[] data = t.DType switch
            {
                DType.Float32 => MemoryMarshal.AsBytes<float>(Array.ConvertAll(t.Values, v => (float)v)).ToArray(),
                DType.Float64 => MemoryMarshal.AsBytes<double>(t.Values).ToArray(),
                _ => throw new ArgumentException($"{t.Name}: safetensors here holds F32 or F64, not {t.DType}"),
            };
            if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("safetensors data is little-endian");
            stream.Write(data);
        }
    }

    public static IReadOnlyList<NamedTensor> Read(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        Span<byte> length = stackalloc byte[8];
        stream.ReadExactly(length);
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(length);
        if (n > 100_000_000) throw new InvalidDataException($"safetensors: a header of {n} bytes is not plausible");
        var header = new byte[n];
        stream.ReadExactly(header);
        using var doc = JsonDocument.Parse(header);
        var entries = new List<(string Name, DType DType, Shape Shape, long Begin, long End)>();
        foreach (var property in doc.RootElement.EnumerateObject())
        {
            if (property.Name == "__metadata__") continue;
            var e = property.Value;
            var dtype = e.GetProperty("dtype").GetString() switch
            {
                "F32" => DType.Float32,
                "F64" => DType.Float64,
                var other => throw new InvalidDataException($"safetensors: {property.Name} has dtype {other}; Lockstep reads F32 and F64"),
            };
            var shape = new Shape(e.GetProperty("shape").EnumerateArray().Select(d => d.GetInt32()).ToArray());
            var offsets = e.GetProperty("data_offsets").EnumerateArray().Select(d => d.GetInt64()).ToArray();
            if (offsets.Length != 2 || offsets[1] - offsets[0] != shape.Count * dtype.SizeOf())
            {
                throw new InvalidDataException($"safetensors: {property.Name}: data_offsets [{string.Join(", ", offsets)}] do not fit {shape} of {dtype}");
            }
            entries.Add((property.Name, dtype, shape, offsets[0], offsets[1]));
        }
        using var rest = new MemoryStream();
        stream.CopyTo(rest);
        var data = rest.GetBuffer().AsSpan(0, (int)rest.Length);
        var tensors = new List<NamedTensor>(entries.Count);
        foreach (var (name, dtype, shape, begin, end) in entries)
        {
            if (begin < 0 || end > data.Length) throw new InvalidDataException($"safetensors: {name}: bytes [{begin}, {end}) lie outside the {data.Length} bytes of data");
            var bytes = data[(int)begin..(int)end];
            double[] values = dtype == DType.Float32
                ? Array.ConvertAll(MemoryMarshal.Cast<byte, float>(bytes).ToArray(), v => (double)v)
                : MemoryMarshal.Cast<byte, double>(bytes).ToArray();
            tensors.Add(new NamedTensor(name, dtype, shape, values));
        }
        return tensors;
    }

    private static string Code(DType dtype) => dtype switch
    {
        DType.Float32 => "F32",
        DType.Float64 => "F64",
        _ => throw new ArgumentException($"safetensors here holds F32 or F64, not {dtype}"),
    };

    /// <summary>Writes every parameter of <paramref name="network"/> under its PyTorch name, in its dtype.</summary>
    public static void Save(Network network, string path)
    {
        ArgumentNullException.ThrowIfNull(network);
        var tensors = network.Parameters.Select(p => new NamedTensor(p.Name, p.Value.DType, p.Shape, p.Value.ToDoubles())).ToArray();
        using var file = File.Create(path);
        Write(file, tensors);
    }

    /// <summary>Loads every parameter of <paramref name="network"/> from <paramref name="path"/> by name; shapes must match.</summary>
    public static void Load(Network network, string path)
    {
        ArgumentNullException.ThrowIfNull(network);
        IReadOnlyList<NamedTensor> tensors;
        using (var file = File.OpenRead(path)) tensors = Read(file);
        var byName = tensors.ToDictionary(t => t.Name);
        foreach (var p in network.Parameters)
        {
            if (!byName.TryGetValue(p.Name, out var t))
            {
                throw new ArgumentException($"{path}: no tensor '{p.Name}' for {network.Definition.Name}; the file has {string.Join(", ", byName.Keys)}");
            }
            if (t.Shape != p.Shape) throw new ArgumentException($"{path}: {p.Name} is {t.Shape} in the file, {p.Shape} in {network.Definition.Name}");
            p.Load(t.Values);
        }
    }
}
